"""R4: the flow timeout (EXIGO_SYNC_FLOW_TIMEOUT_SECONDS) stops a batch like a SIGTERM does,
here while dbt is busy in the warehouse: the run ends soon after the deadline, the batch is
`failed` naming the timeout, both locks are free and dbt's process is gone."""

from __future__ import annotations

import time
from pathlib import Path

from tests.flow.cli_processes import (
    assert_all_gone,
    dbt_processes,
    descendants,
    prefect_slots,
    start_cli,
)
from tests.flow.helpers import SyncEnv

TIMEOUT_SECONDS = 40  # the run reaches dbt ~10-20 s after the flow starts on this machine


def test_r4_flow_timeout_stops_a_batch_busy_in_dbt(chain: SyncEnv, tmp_path: Path) -> None:
    env, home = chain, tmp_path / "prefect-home"
    run, marker = start_cli(
        tmp_path, "timeout", prefect_home=home, fault="before_current",
        extra_env={"EXIGO_SYNC_FLOW_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)},
    )  # fmt: skip
    run.wait_for(marker)
    family = {run.pid} | descendants(run.pid)
    assert dbt_processes(family), "no dbt process among the run's processes"
    started = time.monotonic()
    assert run.wait(timeout=TIMEOUT_SECONDS + 15) == 1, run.output()[-2000:]
    assert time.monotonic() - started < TIMEOUT_SECONDS + 15
    assert "timed out" in run.output().lower() or "timeout" in run.output().lower()
    assert_all_gone(family, within=2)
    last = env.batches()[-1]
    assert last["status"] == "failed" and "timeout" in last["error"], last
    assert env.query(env.warehouse, "SELECT count(*) FROM exigo_sync.run_lock") == [(0,)]
    assert set(prefect_slots(home).values()) == {0}
