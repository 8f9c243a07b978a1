"""R1/R2 the way production runs: a real `prefect server start` (on localhost, started and
stopped by this test), the prefect.yaml deployment registered with `prefect deploy`, and a
process worker running the flow.

- A second run of the deployment while one is in flight is queued by the deployment's
  concurrency limit (AwaitingConcurrencySlot), not lost and not run beside the first.
- The flow process of the first run is killed outright: the worker reports it Crashed, which
  frees the deployment's slot; the queued run then starts by itself, takes over the dead run's
  lock and Prefect slot, and merges exactly what an uninterrupted batch would.

What it cannot show: a worker whose host dies with it (no one reports the run Crashed): that is
Prefect's zombie detection, an automation (deploy/prefect/zombie-flow-runs.yaml) whose
registration test_zombie_automation_registers checks; firing it needs minutes of silence."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exigo_sync.settings import REPO_ROOT
from tests.flow.cli_processes import assert_all_gone, descendants
from tests.flow.helpers import SyncEnv, copy_files, make_env, table_diff

# In `make test-slow`: a real Prefect server, `prefect deploy` and a process worker (about four
# minutes). `make test` proves R1 and R2 through the flow itself (test_flow_recovery.py,
# test_flow_concurrency.py) and a served flow (test_serve.py).
pytestmark = pytest.mark.slow

PREFECT = str(Path(sys.executable).parent / "prefect")
DEPLOYMENT = "exigo-sync/exigo-sync-scheduled"


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server with its services, on a random localhost port."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (
                home / "server.log"
            ).read_text()[-3000:]
            time.sleep(0.5)
        yield {"url": url, "home": str(home)}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _cli(server: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": server["url"], "PREFECT_HOME": server["home"]}
    proc = subprocess.run(
        [PREFECT, "--no-prompt", *args], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture
def deployed(prefect_server: dict[str, str], r1_start: dict[str, Any], tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SyncEnv, Any]]:  # fmt: skip
    """The prefect.yaml deployment (schedule paused: this test triggers its runs) and a process
    worker whose environment points the flow at this test's files."""
    from prefect.client.orchestration import SyncPrefectClient

    env = make_env(tmp_path / "env", r1_start["start"].source, monkeypatch)
    copy_files(r1_start["start"], env)
    monkeypatch.setenv("EXIGO_SYNC_LOCK_TIMEOUT_SECONDS", "60")
    _cli(prefect_server, "work-pool", "create", "exigo-sync", "--type", "process", "--overwrite")
    _cli(prefect_server, "deploy", "--all")
    with SyncPrefectClient(prefect_server["url"]) as setup:
        deployment = setup.read_deployment_by_name(DEPLOYMENT)
        for schedule in deployment.schedules:
            setup.update_deployment_schedule(deployment.id, schedule.id, active=False)

    worker_env = {**os.environ, "PREFECT_API_URL": prefect_server["url"],
                  "PREFECT_HOME": prefect_server["home"], "PREFECT_WORKER_QUERY_SECONDS": "1",
                  "PREFECT_WORKER_PREFETCH_SECONDS": "1"}  # fmt: skip
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "exigo-sync", "--type", "process"],
        cwd=REPO_ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        with SyncPrefectClient(prefect_server["url"]) as client:
            yield env, client
    finally:
        family = {worker.pid} | descendants(worker.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        for pid in family:  # flow processes run in process groups of their own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        log.close()


def _wait_state(client: Any, run_id: Any, names: set[str], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if run.state and run.state.name in names:
            return run
        assert time.monotonic() < deadline, f"flow run {run_id} is {run.state}, not {names}"
        time.sleep(0.5)


def test_r1_r2_deployment_queues_the_next_run_and_recovers_from_a_killed_flow_process(
    deployed: tuple[SyncEnv, Any], r1_start: dict[str, Any], tmp_path: Path
) -> None:
    env, client = deployed
    deployment = client.read_deployment_by_name(DEPLOYMENT)
    marker = tmp_path / "first.reached"
    first = client.create_flow_run_from_deployment(
        deployment.id,
        job_variables={"env": {"EXIGO_SYNC_FAULT": "after_refresh",
                               "EXIGO_SYNC_FAULT_MODE": "pause",
                               "EXIGO_SYNC_FAULT_MARKER": str(marker)}},
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert time.monotonic() < deadline, client.read_flow_run(first.id).state
        time.sleep(0.2)
    assert env.batches()[-1]["status"] == "refreshed"

    # A second run while the first is in flight: queued by the deployment's limit (ENQUEUE).
    second = client.create_flow_run_from_deployment(deployment.id)
    _wait_state(client, second.id, {"AwaitingConcurrencySlot"}, timeout=60)

    # The first run's flow process dies outright (OOM killer, kill -9).
    pid = int(str(client.read_flow_run(first.id).infrastructure_pid).rsplit(":", 1)[-1])
    family = {pid} | descendants(pid)
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    assert_all_gone(family)
    assert _wait_state(client, first.id, {"Crashed"}, timeout=60).state.is_crashed()

    # Nobody intervenes: the queued run starts when the slot is free, and recovers.
    done = _wait_state(client, second.id, {"Completed", "Failed", "Crashed"}, timeout=240)
    assert done.state.is_completed(), done.state.message
    batches = env.batches()
    assert [b["status"] for b in batches] == ["merged", "failed", "merged"]
    assert batches[1]["error"].startswith("abandoned")
    diff = table_diff(env.snapshot(), r1_start["expected"])
    assert not diff, diff
    assert env.query(env.warehouse, "SELECT count(*) FROM exigo_sync.run_lock") == [(0,)]
    limit = client.read_global_concurrency_limit_by_name(env_lock_name())
    assert limit.active_slots == 0


def env_lock_name() -> str:
    from exigo_sync.settings import Settings

    s = Settings()
    return s.topology_for().lock_name(s.source_name)


def test_zombie_automation_registers(prefect_server: dict[str, str]) -> None:
    """The automation the README gives for runs whose worker or host died (no one reports them
    Crashed): Prefect accepts the file, with its proactive trigger and Crashed action."""
    from prefect.client.orchestration import SyncPrefectClient

    _cli(prefect_server, "automation", "create", "--from-file",
         str(REPO_ROOT / "deploy" / "prefect" / "zombie-flow-runs.yaml"))  # fmt: skip
    with SyncPrefectClient(prefect_server["url"]) as client:
        (automation,) = client.read_automations_by_name("exigo-sync: crash zombie flow runs")
    assert automation.trigger.posture == "Proactive"
    assert automation.actions[0].type == "change-flow-run-state"
    assert automation.actions[0].state == "CRASHED"
