"""Deleted keys coming back with their old rows (H7: a key that comes back; only a key
reconciliation can see it), and a dbo table that reads empty for a while (H9's guard)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator import SimulatorError, SyncSimulator
from tests.simulator.helpers import BUSY, CLOCK_START, DELETIONS_ONLY, QUIET, keys, snapshot


def _delete_some(sim: SyncSimulator) -> dict:
    """Three hours of deletions only (every row deleted is as it was before); the snapshot
    from before them."""
    before = snapshot(sim)
    sim.advance(timedelta(hours=3), replace(DELETIONS_ONLY, line_removals=1.0))
    return before


def test_h7_restore_deleted_brings_back_the_exact_old_rows(sim: SyncSimulator) -> None:
    before = _delete_some(sim)
    purged = sim.deleted_keys("Customers")
    assert len(purged) == 3
    now = sim.now()

    restored = sim.restore_deleted("Customers", 2)
    assert len(restored) == 2 and set(restored) <= purged
    oldest_first = [d["CustomerID"] for d in sim.deletions("Customers")][:2]
    assert restored == sorted(oldest_first)
    after = snapshot(sim)
    for key in restored:
        # same content, old ModifiedDate: what a re-initialisation or a restore shows
        assert after["Customers"][key] == before["Customers"][key]
        assert after["Customers"][key]["ModifiedDate"] < CLOCK_START
        # the account (and site) the purge took come back with it
        for table in ("CustomerAccounts", "CustomerSites"):
            if key in before[table]:
                assert after[table][key] == before[table][key]
    assert sim.deleted_keys("Customers") == purged - set(restored)
    marked = {d["CustomerID"]: d["RestoredAt"] for d in sim.deletions("Customers")}
    assert all(marked[k] == now for k in restored)

    # The queue cannot see them: nothing they hold changed since long before the refresh.
    sim.refresh(CLOCK_START - timedelta(minutes=1))
    assert not set(restored) & keys(sim.queue_rows("Customers"), "CustomerID")


def test_h7_restore_deleted_by_keys_every_kind(sim: SyncSimulator) -> None:
    before = _delete_some(sim)
    for table in REPLICATED_TABLES:
        deleted = sorted(sim.deleted_keys(table))
        if table == "OrderDetails":  # lines of a deleted order come back with their order
            deleted = [k for k in deleted if k[0] not in sim.deleted_keys("Orders")]
        if table in ("CustomerAccounts", "CustomerSites"):  # those whose customer is here
            deleted = [k for k in deleted if k not in sim.deleted_keys("Customers")]
        assert deleted, table
        key = deleted[0]
        assert sim.restore_deleted(table, keys=[key]) == [key]
        assert snapshot(sim)[table][key] == before[table][key], table
        assert key not in sim.deleted_keys(table)
    # an order comes back with all its lines
    order = sorted(sim.deleted_keys("Orders"))[0]
    lines = {k for k in before["OrderDetails"] if k[0] == order}
    sim.restore_deleted("Orders", keys=[order])
    after = snapshot(sim)
    assert lines and all(after["OrderDetails"][k] == before["OrderDetails"][k] for k in lines)


def test_h7_restore_deleted_refuses_what_cannot_come_back(sim: SyncSimulator) -> None:
    _delete_some(sim)
    live_customer = min(keys(sim.current_rows("Customers"), "CustomerID"))
    with pytest.raises(SimulatorError, match="not deleted now"):
        sim.restore_deleted("Customers", keys=[live_customer])
    purged = sorted(sim.deleted_keys("Customers"))
    account_of_purged = [k for k in sim.deleted_keys("CustomerAccounts") if k in purged]
    assert account_of_purged
    with pytest.raises(SimulatorError, match="refers to"):
        sim.restore_deleted("CustomerAccounts", keys=account_of_purged[:1])
    with pytest.raises(SimulatorError, match="either n or keys"):
        sim.restore_deleted("Customers")
    with pytest.raises(SimulatorError, match="2 column"):
        sim.restore_deleted("OrderDetails", keys=[1])
    # n counts only what can come back: accounts of purged customers are not candidates
    restorable = len(sim.deleted_keys("CustomerAccounts")) - len(account_of_purged)
    assert len(sim.restore_deleted("CustomerAccounts", 100)) == restorable
    assert sim.restore_deleted("Payments", 0) == []
    # nothing was half-done by the refusals
    assert sorted(sim.deleted_keys("Customers")) == purged


@pytest.mark.parametrize("table", list(REPLICATED_TABLES))
def test_h9_empty_and_restore_table_round_trip_exactly(sim: SyncSimulator, table: str) -> None:
    before = sim.current_rows(table)
    others = {t: sim.current_rows(t) for t in REPLICATED_TABLES if t != table}
    assert sim.empty_table(table) == len(before) > 0
    assert sim.current_rows(table) == [] and sim.row_counts()[table] == 0
    assert sim.emptied_tables() == {table: CLOCK_START}
    # what a consumer sees: the table is there, empty; its rows are not deleted
    result = sim.refresh(CLOCK_START - timedelta(days=365))
    assert result.row_counts[table] == 0
    assert not sim.deleted_keys(table)
    assert {t: sim.current_rows(t) for t in others} == others

    assert sim.restore_table(table) == len(before)
    assert sim.current_rows(table) == before
    assert sim.emptied_tables() == {}


def test_h9_activity_goes_on_behind_an_emptied_table(sim: SyncSimulator) -> None:
    """The back office keeps working while the sync shows an empty table: new payments are
    taken, some deleted; the table stays empty until restored, then holds the truth."""
    sim.empty_table("Payments")
    summary = sim.advance(timedelta(hours=3), BUSY)
    assert summary["payments_created"] > 0 and summary["payments_deleted"] > 0
    assert sim.row_counts()["Payments"] == 0
    sim.restore_table("Payments")
    payments = sim.current_rows("Payments")
    assert not keys(payments, "PaymentID") & sim.deleted_keys("Payments")
    assert max(p["ModifiedDate"] for p in payments) >= CLOCK_START
    orders = keys(sim.current_rows("Orders"), "OrderID")
    assert {p["OrderID"] for p in payments} <= orders


def test_h9_emptied_table_misuse_is_refused(sim: SyncSimulator) -> None:
    sim.empty_table("Orders")
    with pytest.raises(SimulatorError, match="already emptied"):
        sim.empty_table("Orders")
    with pytest.raises(SimulatorError, match="restore_table it first"):
        sim.add_source_column("Orders", "Extra", "int")
    with pytest.raises(SimulatorError, match="restore_table it first"):
        sim.restore_deleted("Orders", 1)
    with pytest.raises(SimulatorError, match="not emptied"):
        sim.restore_table("Payments")
    with pytest.raises(SimulatorError, match="unknown table"):
        sim.empty_table("Bogus")
    sim.advance(timedelta(hours=1), QUIET)
    sim.restore_table("Orders")
    assert sim.row_counts()["Orders"] > 0
