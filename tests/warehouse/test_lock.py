"""R2 at the warehouse-lock level (no Prefect): a live holder makes a rival wait and give up
naming it; a dead holder (pid gone on this host, or heartbeat stale) is taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from exigo_sync.profiles import Target
from exigo_sync.warehouse import ledger
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.connection import connect
from exigo_sync.warehouse.lock import LockTimeout, read_holder, warehouse_lock

HOUR = timedelta(hours=1)


def _target(tmp_path: Path) -> Target:
    attach = [{"path": str(tmp_path / "src.duckdb"), "alias": "exigo"}]
    return Target("duckdb", "duckdb", {"path": str(tmp_path / "wh.duckdb"), "attach": attach})


def _plant_lock(t: Target, pid: int, heartbeat_age: timedelta = timedelta(0)) -> None:
    now = ledger.utcnow()
    with connect(t) as con:
        ledger.ensure_schema(con, "duckdb")
        con.execute(
            q.INSERT_LOCK,
            ["L", "old-token", "old-run", socket.gethostname(), pid, now, now - heartbeat_age],
        )


def test_r2_live_holder_blocks_then_named(tmp_path: Path) -> None:
    t = _target(tmp_path)
    first = warehouse_lock(t, "L", flow_run_id="first", timeout=1, stale_after=HOUR)
    rival = warehouse_lock(t, "L", flow_run_id="second", timeout=0.5, stale_after=HOUR, poll=0.1)
    named = r"flow run first on .* since .*queue\.Refresh"
    with first, pytest.raises(LockTimeout, match=named), rival:
        pass
    assert read_holder(t, "L") is None  # released on exit


def test_r2_dead_pid_lock_taken_over_and_in_flight_batch_abandoned(tmp_path: Path) -> None:
    t = _target(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _plant_lock(t, dead.pid)
    with connect(t) as con:
        con.execute(q.INSERT_BATCH, [7, "old-run", "duckdb", "watermark", ledger.utcnow(),
                                     ledger.utcnow()])  # fmt: skip
    with warehouse_lock(t, "L", flow_run_id="new", timeout=1, stale_after=HOUR) as lock:
        assert lock.abandoned_batches == 1
        assert read_holder(t, "L").flow_run_id == "new"  # type: ignore[union-attr]
    b = ledger.get_batch(t, 7)
    assert b is not None and b["status"] == "failed" and b["error"].startswith("abandoned")


def test_r2_stale_heartbeat_taken_over(tmp_path: Path) -> None:
    t = _target(tmp_path)
    _plant_lock(t, os.getppid(), heartbeat_age=2 * HOUR)  # alive, but silent for 2 h
    with warehouse_lock(t, "L", flow_run_id="new", timeout=1, stale_after=HOUR):
        assert read_holder(t, "L").flow_run_id == "new"  # type: ignore[union-attr]
