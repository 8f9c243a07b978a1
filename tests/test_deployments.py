"""The deployments load and register against the (temporary) Prefect server with the expected
schedule and concurrency limit: prefect.yaml through `prefect deploy`, and `exigo-sync serve`'s
(exigo_sync.cli.serve_deployments). Nothing here runs the flow (flow runs: tests/flow/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from exigo_sync.settings import REPO_ROOT


def test_prefect_yaml_deployment_registers_with_schedule_and_limit(
    prefect_api: str, tmp_path: Path
) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        if not any(p.name == "exigo-sync" for p in client.read_work_pools()):
            client.create_work_pool(WorkPoolCreate(name="exigo-sync", type="process"))
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "--no-prompt", "deploy", "--all"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("exigo-sync/exigo-sync-scheduled")
        nightly = client.read_deployment_by_name("exigo-sync/exigo-sync-reconcile")
    assert dep.entrypoint == nightly.entrypoint == "exigo_sync.flow:exigo_sync"
    assert dep.work_pool_name == nightly.work_pool_name == "exigo-sync"
    # One queue for both: with its limit of one, a batch and the reconciliation never overlap.
    assert dep.work_queue_name == nightly.work_queue_name == "exigo-sync-serial"
    (sched,) = dep.schedules
    assert sched.schedule.cron == "*/15 * * * *" and sched.schedule.timezone == "UTC"
    assert sched.active
    assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
    assert nightly.parameters == {"reconcile": True}
    (nightly_sched,) = nightly.schedules
    assert nightly_sched.schedule.cron == "30 2 * * *" and nightly_sched.active


def test_serve_deployments_use_settings_schedules(prefect_api: str, monkeypatch) -> None:
    from prefect import get_client

    from exigo_sync.cli import serve_deployments

    monkeypatch.setenv("EXIGO_SYNC_SCHEDULE_CRON", "*/5 * * * *")
    monkeypatch.setenv("EXIGO_SYNC_RECONCILE_CRON", "0 4 * * *")
    monkeypatch.setenv("EXIGO_SYNC_SCHEDULE_TIMEZONE", "Europe/Amsterdam")
    batch, reconcile = serve_deployments()
    with get_client(sync_client=True) as client:
        for deployment, cron, params in (
            (batch, "*/5 * * * *", {}),
            (reconcile, "0 4 * * *", {"reconcile": True}),
        ):
            dep = client.read_deployment(deployment.apply())
            (sched,) = dep.schedules
            assert sched.schedule.cron == cron
            assert sched.schedule.timezone == "Europe/Amsterdam"
            assert dep.parameters == params
            # One at a time is serve's runner limit, held in the serve process, never a server
            # limit a killed serve could leave full (test_serve.py).
            assert dep.global_concurrency_limit is None
