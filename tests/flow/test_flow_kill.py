"""R1 and R4 with real `exigo-sync run` processes on the CLI's private Prefect API, all sharing
one PREFECT_HOME (the set-up where a killed run used to leave the Prefect limit full forever).

Each test walks one warehouse through a chain of runs, each stopped at a different point of the
batch; every run after the first must first get past whatever the previous one left behind
(lock row, Prefect slot, in-flight batch), so the chain proves recovery step by step, and the
last run, left alone, must leave exactly the tables an uninterrupted batch leaves.

What these tests cannot show: a holder on another host (see tests/warehouse/test_lock.py for
the stale-heartbeat rule) and SQL Server's behaviour when a client dies (the live suite)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.flow.cli_processes import (
    POINTS,
    assert_all_gone,
    finish_and_compare,
    signal_run,
    start_cli,
)
from tests.flow.helpers import SyncEnv


@pytest.mark.slow  # in `make test-slow` (245 s; R1 stays in make test via test_flow_recovery)
def test_r1_sigkill_of_the_process_group_at_every_point_then_next_run_recovers(
    chain: SyncEnv, r1_start: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dbt on two threads as shipped (tests/conftest.py: 1): a kill inside dbt can find two
    # models' transactions open at once.
    monkeypatch.setenv("EXIGO_SYNC_DBT_THREADS", "2")
    env, home = chain, tmp_path / "prefect-home"
    refreshes = env.refresh_calls()
    for i, point in enumerate(POINTS):
        run, marker = start_cli(tmp_path, f"kill-{point}", prefect_home=home, fault=point)
        run.wait_for(marker)
        if i == 1:
            # Waiting for the lock: a second run queues behind the paused one, is killed
            # while it waits, and must leave nothing behind either (it never refreshes, R2).
            waiter, _ = start_cli(tmp_path, "kill-waiting", prefect_home=home)
            waiter.wait_for_output("Beginning flow run")
            assert_all_gone(signal_run(waiter, signal.SIGKILL, group=True))
        # What the OOM killer or `kill -9 -<pgid>` does: no except, no finally.
        assert_all_gone(signal_run(run, signal.SIGKILL, group=True))
        refreshes += point != "before_refresh"
        assert env.refresh_calls() == refreshes

    batches = finish_and_compare(env, tmp_path, home, r1_start["expected"])
    # Batch 1 was merged before the chain; 2-5 were in flight when killed and were found
    # abandoned by the next run; 6 merged. A crashed batch never moved the watermark (L2).
    assert [b["status"] for b in batches] == ["merged"] + ["failed"] * 4 + ["merged"]
    assert all(b["error"].startswith("abandoned") for b in batches[1:5])
    assert batches[-1]["requested_start"] == batches[1]["requested_start"]
    assert env.refresh_calls() == refreshes + 1
