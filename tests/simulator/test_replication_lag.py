"""Replication lag: a change lands in dbo after its ModifiedDate, so a refresh resuming exactly
from the previous call misses rows that a refresh with an overlap gets (why contract rule W1 has
an overlap)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.cli import app
from exigo_sync.simulator import ActivityRates, SyncSimulator
from tests.simulator.helpers import BUSY

LAG = timedelta(minutes=30)
LAGGED = replace(BUSY, replication_lag=LAG)
TIMED = [name for name, t in REPLICATED_TABLES.items() if t.version_time_column is not None]

Snapshot = dict[str, dict[tuple, dict[str, Any]]]


def _snapshot(sim: SyncSimulator) -> Snapshot:
    """Every dbo row now, per table, by key."""
    out: Snapshot = {}
    for name, table in REPLICATED_TABLES.items():
        out[name] = {tuple(r[k] for k in table.key): r for r in sim.current_rows(name)}
    return out


def _landed(before: Snapshot, after: Snapshot) -> dict[str, set[tuple]]:
    """Keys of the rows that are new or different: the changes that landed in between."""
    return {
        name: {key for key, row in rows.items() if before[name].get(key) != row}
        for name, rows in after.items()
    }


def _queue_keys(sim: SyncSimulator) -> dict[str, set[tuple]]:
    return {
        name: {tuple(r[k] for k in table.key) for r in sim.queue_rows(name)}
        for name, table in REPLICATED_TABLES.items()
    }


def _refresh_then_advance(
    sim: SyncSimulator, rates: ActivityRates, hours: float = 2
) -> tuple[datetime, Snapshot, Snapshot]:
    """A consumer's refresh at T, then `hours` of activity: (T, dbo before, dbo after)."""
    previous_call = sim.refresh().refresh_started_at
    before = _snapshot(sim)
    sim.advance(timedelta(hours=hours), rates)
    return previous_call, before, _snapshot(sim)


def test_w1_resuming_from_the_previous_call_misses_late_rows_an_overlap_recovers(
    sim: SyncSimulator,
) -> None:
    previous_call, before, after = _refresh_then_advance(sim, LAGGED)
    landed = _landed(before, after)

    sim.refresh()  # no start: resumes exactly from the previous call
    assert sim.last_refresh_time() == previous_call + timedelta(hours=2)
    queued = _queue_keys(sim)
    missed = {name: landed[name] - queued[name] for name in TIMED}
    assert any(missed.values()), "expected rows that landed after the call they predate"
    for name in TIMED:
        for key in missed[name]:
            row = after[name][key]
            assert previous_call - LAG <= row["ModifiedDate"] < previous_call, (name, key)

    # One concrete row: in dbo, changed after the previous call landed, yet not in the queue.
    name = next(n for n in TIMED if missed[n])
    key = min(missed[name])
    row = _snapshot(sim)[name][key]  # read from dbo again
    assert row["ModifiedDate"] < previous_call
    assert before[name].get(key) != row
    assert key not in queued[name]

    sim.refresh(previous_call - LAG)  # resume with an overlap of at least the lag
    recovered = _queue_keys(sim)
    for table in REPLICATED_TABLES:  # OrderDetails too: they come with their changed order
        assert landed[table] <= recovered[table], table
    removed_from = {order_id for order_id, _ in sim.removed_order_lines()}
    assert removed_from and {(o,) for o in removed_from} <= recovered["Orders"]


def test_without_lag_resuming_from_the_previous_call_misses_nothing(sim: SyncSimulator) -> None:
    assert BUSY.replication_lag == timedelta(0)
    previous_call, before, after = _refresh_then_advance(sim, BUSY)
    landed = _landed(before, after)
    sim.refresh()
    queued = _queue_keys(sim)
    assert any(landed.values())
    for name in REPLICATED_TABLES:
        assert landed[name] <= queued[name], name
    for name in TIMED:
        assert all(after[name][k]["ModifiedDate"] >= previous_call for k in landed[name])


def test_lagged_rows_are_back_dated_by_at_most_the_lag(sim: SyncSimulator) -> None:
    start, before, after = _refresh_then_advance(sim, LAGGED)
    end = sim.now()
    landed = _landed(before, after)
    back_dated = 0
    for name in TIMED:
        for key in landed[name]:
            modified = after[name][key]["ModifiedDate"]
            assert start - LAG <= modified < end, (name, key)
            back_dated += modified < start
    assert back_dated > 0
    # Timestamps set by the same change move with ModifiedDate (a new row may have changed
    # again in a later sub-step, so its creation time is only at or before ModifiedDate).
    created_back_dated = 0
    for name, column in (
        ("Customers", "CreatedDate"),
        ("Orders", "OrderDate"),
        ("Orders", "CreatedDate"),
        ("Payments", "PaymentDate"),
    ):
        for key in landed[name] - before[name].keys():
            row = after[name][key]
            assert start - LAG <= row[column] <= row["ModifiedDate"], (name, key, column)
            created_back_dated += row[column] == row["ModifiedDate"] < start
    assert created_back_dated > 0
    for key in landed["Orders"]:
        o = after["Orders"][key]
        shipped_before = before["Orders"].get(key, {}).get("ShippedDate")
        if o["ShippedDate"] is not None and shipped_before is None:
            assert start - LAG <= o["ShippedDate"] <= o["ModifiedDate"]
    for p in sim.deleted_payments():
        assert start - LAG <= p["DeletedAt"] < end


def test_modified_date_strictly_increases_per_key_across_versions(sim: SyncSimulator) -> None:
    """A lag longer than the sub-steps and the advances: a back-dated change would often fall
    below the row's previous version without the guard."""
    rates = replace(BUSY, replication_lag=timedelta(hours=3))
    previous = _snapshot(sim)
    back_dated_below_previous_advance = 0
    for minutes in (20, 20, 20, 20, 20, 20, 150, 20, 20):
        start = sim.now()
        sim.advance(timedelta(minutes=minutes), rates)
        current = _snapshot(sim)
        for name in TIMED:
            for key, row in current[name].items():
                old = previous[name].get(key)
                if old is None:
                    continue
                if old == row:
                    continue
                assert row["ModifiedDate"] > old["ModifiedDate"], (name, key)
                back_dated_below_previous_advance += row["ModifiedDate"] < start
        # order/lines rule: a line edited, added or removed bumps its order
        line_orders = {
            key[0]
            for key in current["OrderDetails"].keys() | previous["OrderDetails"].keys()
            if current["OrderDetails"].get(key) != previous["OrderDetails"].get(key)
        }
        for order_id in line_orders - sim.deleted_keys("Orders"):  # deleted with its lines
            order = current["Orders"][(order_id,)]
            old_order = previous["Orders"].get((order_id,))
            assert old_order is None or order["ModifiedDate"] > old_order["ModifiedDate"]
        previous = current
    assert back_dated_below_previous_advance > 0


def _lagged_run(path: Path, lag: timedelta) -> dict[str, Any]:
    sim = SyncSimulator.create(path, seed=11, customers=150, clock_start=datetime(2026, 3, 1))
    sim.refresh()
    sim.advance(timedelta(hours=3), replace(BUSY, replication_lag=lag))
    sim.refresh()
    out: dict[str, Any] = {name: sim.current_rows(name) for name in REPLICATED_TABLES}
    out["queue.Orders"] = sim.queue_rows("Orders")
    out["deleted"] = sim.deleted_payments()
    out["removed"] = sorted(sim.removed_order_lines())
    return out


def test_same_seed_and_lag_give_identical_databases(tmp_path: Path) -> None:
    a = _lagged_run(tmp_path / "a.duckdb", LAG)
    b = _lagged_run(tmp_path / "b.duckdb", LAG)
    assert a == b
    unlagged = _lagged_run(tmp_path / "c.duckdb", timedelta(0))
    assert a["Customers"] != unlagged["Customers"]


def test_replication_lag_must_be_a_non_negative_timedelta() -> None:
    with pytest.raises(ValueError, match="negative"):
        ActivityRates(replication_lag=timedelta(minutes=-1))
    with pytest.raises(ValueError, match="timedelta"):
        ActivityRates(replication_lag=30)  # type: ignore[arg-type]
    assert ActivityRates().replication_lag == timedelta(0)
    assert LAGGED.scaled(2.0).replication_lag == LAG


runner = CliRunner()


def test_cli_advance_replication_lag_minutes(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    assert runner.invoke(app, ["simulate", "create", db, "--customers", "300"]).exit_code == 0
    previous_call = SyncSimulator(db).refresh().refresh_started_at
    result = runner.invoke(
        app,
        [
            "simulate",
            "advance",
            db,
            "--hours",
            "1",
            "--rate-scale",
            "5",
            "--replication-lag-minutes",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    sim = SyncSimulator(db)
    late = [
        r
        for r in sim.changed_since("Customers", previous_call - LAG)
        if r["ModifiedDate"] < previous_call
    ]
    assert late, "expected customers that landed after the refresh they predate"

    result = runner.invoke(
        app, ["simulate", "advance", db, "--hours", "1", "--replication-lag-minutes", "-5"]
    )
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--replication-lag-minutes" in lines[0]
