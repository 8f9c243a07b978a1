"""R4 with real `exigo-sync run` processes on the CLI's private Prefect API sharing one
PREFECT_HOME: SIGTERM (a `kill`, `systemctl stop`, a Prefect worker cancelling the run) or
Ctrl-C stops a run within seconds at any step, marks its batch `failed`, frees both locks at
once and leaves no process behind (dbt's included: nothing writes after the run says it
stopped). The chain of stopped runs ends with a normal run that must merge exactly what an
uninterrupted batch would (R1).

What these tests cannot show: SQL Server rolling back the statement of a dbt process that
ended (the live suite); the flow timeout is covered in tests/flow/test_flow_timeout.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.flow.cli_processes import (
    POINTS,
    assert_all_gone,
    finish_and_compare,
    prefect_slots,
    signal_run,
    start_cli,
)
from tests.flow.helpers import SyncEnv


def _assert_stopped_cleanly(env: SyncEnv, home: Path, signal_name: str) -> None:
    last = env.batches()[-1]
    assert last["status"] == "failed", last
    assert signal_name in last["error"]
    # Free at once, not after a timeout: the row is gone and the slot returned.
    assert env.query(env.warehouse, "SELECT count(*) FROM exigo_sync.run_lock") == [(0,)]
    assert set(prefect_slots(home).values()) == {0}


@pytest.mark.slow  # in `make test-slow` (177 s; R4 stays via the two dbt-stop tests below)
def test_r4_sigterm_at_every_point_stops_within_seconds(
    chain: SyncEnv, r1_start: dict[str, Any], tmp_path: Path
) -> None:
    """SIGTERM to the run's pid alone, as a Prefect worker sends it to cancel a run."""
    env, home = chain, tmp_path / "prefect-home"
    for i, point in enumerate(POINTS):
        run, marker = start_cli(tmp_path, f"stop-{point}", prefect_home=home, fault=point)
        run.wait_for(marker)
        if i == 1:
            # Waiting for the lock, on another PREFECT_HOME: only the warehouse row can see
            # the holder there (R2); the waiter stops just as fast and takes nothing.
            waiter, _ = start_cli(tmp_path, "stop-waiting", prefect_home=tmp_path / "other")
            waiter.wait_for_output("Beginning flow run")
            family = signal_run(waiter, signal.SIGTERM, group=False)
            assert waiter.wait(timeout=10) in (143, -signal.SIGTERM), waiter.output()[-2000:]
            assert_all_gone(family, within=2)
            assert len(env.batches()) == i + 2  # the waiter never started a batch
        family = signal_run(run, signal.SIGTERM, group=False)
        # Killed by the signal itself (Prefect re-raises it once it has cleaned up), or exited
        # with the shell's code for it: either way within 10 s.
        assert run.wait(timeout=10) in (143, -signal.SIGTERM), run.output()[-2000:]
        assert_all_gone(family, within=2)
        _assert_stopped_cleanly(env, home, "SIGTERM")

    batches = finish_and_compare(env, tmp_path, home, r1_start["expected"])
    assert [b["status"] for b in batches] == ["merged"] + ["failed"] * 4 + ["merged"]


def test_r4_ctrl_c_while_dbt_writes_stops_dbt_too(chain: SyncEnv, tmp_path: Path) -> None:
    """Ctrl-C in a terminal sends SIGINT to the whole process group, dbt's process included,
    while a model's query runs; the private Prefect API, in its own group, stays up long
    enough for the run to return its slot, then goes too."""
    env, home = chain, tmp_path / "prefect-home"
    run, marker = start_cli(tmp_path, "ctrl-c", prefect_home=home, fault="before_current")
    run.wait_for(marker)
    family = signal_run(run, signal.SIGINT, group=True)
    assert run.wait(timeout=10) in (130, -signal.SIGINT), run.output()[-2000:]
    assert_all_gone(family, within=2)
    _assert_stopped_cleanly(env, home, "SIGINT")


def test_r4_sigterm_while_dbt_writes_cancels_dbt_query_first(
    sync_env: SyncEnv, tmp_path: Path
) -> None:
    """SIGTERM to the run's pid alone while a model's query runs: the run stops dbt's process,
    which cancels its query itself, as dbt does on Ctrl-C (the warehouse hears a cancel, not a
    process dying), then ends with 143 well inside the 5 s before SIGKILL; the run ends within
    10 s with its batch failed and both locks free."""
    env, home = sync_env, tmp_path / "prefect-home"
    run, marker = start_cli(tmp_path, "dbt-cancel", prefect_home=home, fault="before_current")
    run.wait_for(marker)
    time.sleep(0.5)  # the pre-hook's endless query runs now
    family = signal_run(run, signal.SIGTERM, group=False)
    assert run.wait(timeout=10) in (143, -signal.SIGTERM), run.output()[-2000:]
    assert_all_gone(family, within=2)
    out = run.output()
    assert "dbt: CANCEL query model.exigo_sync." in out, out[-3000:]
    assert "dbt's process stopped (exit code 143)" in out, out[-3000:]
    _assert_stopped_cleanly(env, home, "SIGTERM")
