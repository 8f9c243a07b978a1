"""R2 fencing end to end: a batch paused (SIGSTOP: a sleeping laptop, a long GC, a frozen VM)
past the stale time is taken over; when it resumes it can no longer write.

The paused run is a real `exigo-sync run` in a pid namespace of its own (another host as far as
the lock can tell: same hostname, its pids not ours), held just after its queue.Refresh and
then stopped. A second run, here, waits for the holder's heartbeat to go stale, takes the lock
over, abandons the paused batch, and merges its own. The paused run is then let go: its next
step finds the lock gone and it stops without landing, merging or touching the ledger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exigo_sync.settings import REPO_ROOT
from tests.flow.helpers import SyncEnv, advance, assert_current_equals_source


def _own_pid_namespace() -> str | None:
    if os.geteuid() != 0:
        return "needs root for a pid namespace (unshare --pid)"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"])
    return None if probe.returncode == 0 else "unshare --pid is not allowed here"


@pytest.mark.slow  # in `make test-slow` (fencing itself: tests/warehouse/test_lock.py)
def test_r2_paused_holder_taken_over_cannot_write_when_it_resumes(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if reason := _own_pid_namespace():
        pytest.skip(reason)
    env = sync_env
    env.run_ok()
    advance(env, 2)
    marker, release, log = tmp_path / "held", tmp_path / "release", tmp_path / "paused.log"
    paused_env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-paused"),
        "EXIGO_SYNC_FAULT": "after_refresh",
        "EXIGO_SYNC_FAULT_MODE": "hold",
        "EXIGO_SYNC_FAULT_MARKER": str(marker),
        "EXIGO_SYNC_FAULT_RELEASE": str(release),
    }
    paused_env.pop("PREFECT_API_URL", None)
    landed = "SELECT MAX(batch_id) FROM exigo_landing.landed_tables"
    with log.open("wb") as out:
        paused = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc",
             sys.executable, "-m", "exigo_sync.cli", "run"],
            env=paused_env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert paused.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the paused run never got past its refresh"
            time.sleep(0.1)
        os.killpg(paused.pid, signal.SIGSTOP)  # the laptop lid closes
        paused_batch = env.batches()[-1]
        assert paused_batch["status"] == "refreshed"

        # Here, a batch waits for the paused holder's heartbeat to go stale and takes over.
        monkeypatch.setenv("EXIGO_SYNC_LOCK_STALE_SECONDS", "3")
        monkeypatch.setenv("EXIGO_SYNC_LOCK_TIMEOUT_SECONDS", "60")
        out = env.run_ok()
        ours = out["batch_id"]
        by_id = {b["batch_id"]: b for b in env.batches()}
        assert by_id[paused_batch["batch_id"]]["status"] == "failed"
        assert "abandoned" in by_id[paused_batch["batch_id"]]["error"]
        assert by_id[ours]["status"] == "merged"
        landed_for = env.query(
            env.warehouse, "SELECT MAX(batch_id) FROM exigo_landing.landed_tables"
        )

        # The lid opens: the paused run goes on from where it stood, and stops at its next step.
        os.killpg(paused.pid, signal.SIGCONT)
        release.touch()
        assert paused.wait(timeout=120) == 1, log.read_text()[-3000:]
    finally:
        release.touch()
        if paused.poll() is None:
            os.killpg(paused.pid, signal.SIGCONT)
            os.killpg(paused.pid, signal.SIGKILL)
            paused.wait(timeout=30)
    output = log.read_text()
    assert "lost the lock" in output and "R2" in output, output[-3000:]
    # It wrote nothing: the ledger, the landing and the lock are as the run that took over
    # left them.
    assert {b["batch_id"]: b["status"] for b in env.batches()} == {
        b["batch_id"]: b["status"] for b in by_id.values()
    }
    assert env.query(env.warehouse, landed) == landed_for
    env.run_ok(reconcile=True)
    assert assert_current_equals_source(env) > 0
