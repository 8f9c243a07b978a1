"""Physical deletions at the source (contract H7's input): every kind happens at its rate,
leaves no orphan, is invisible to queue.Refresh, and the truth API reports what went when."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator import ActivityRates, SimulatorError, SyncSimulator
from exigo_sync.simulator.rates import PER_HOUR_RATES
from tests.simulator.helpers import (
    BUSY,
    CLOCK_START,
    CUSTOMERS,
    DELETIONS_ONLY,
    QUIET,
    keys,
    snapshot,
)

# rate field, summary kind, table whose rows the event deletes, cause in the archive
KINDS = [
    ("customer_purges", "customers_purged", "Customers", "customer_purged"),
    ("order_deletes", "orders_deleted", "Orders", "order_deleted"),
    ("account_deletes", "accounts_deleted", "CustomerAccounts", "account_deleted"),
    ("site_deletes", "sites_deleted", "CustomerSites", "site_deleted"),
    ("payment_deletes", "payments_deleted", "Payments", "payment_deleted"),
    ("line_removals", "line_removals", "OrderDetails", "line_removed"),
]
HOURS = 6


@pytest.fixture(scope="module")
def busy(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> SyncSimulator:
    """The small database after HOURS busy hours (every kind of activity and deletion)."""
    path = tmp_path_factory.mktemp("busy_deletions") / "sync.duckdb"
    shutil.copyfile(template_db, path)
    sim = SyncSimulator(path)
    sim.advance(timedelta(hours=HOURS), BUSY)
    return sim


@pytest.mark.parametrize(("rate", "kind", "table", "cause"), KINDS)
def test_h7_each_deletion_kind_happens_at_its_rate(
    sim: SyncSimulator, rate: str, kind: str, table: str, cause: str
) -> None:
    """Rates are events per hour: at 2 per hour (only this kind), 3 one-hour sub-steps give
    exactly 6 events; each deleted key is gone from dbo and recorded with its time and cause."""
    before = snapshot(sim)
    summary = sim.advance(timedelta(hours=3), replace(QUIET, **{rate: 2.0}))
    assert summary[kind] == 6
    assert sum(summary.counts.values()) == 6  # nothing else happened
    events = [d for d in sim.deletions(table) if d["Cause"] == cause]
    key_cols = REPLICATED_TABLES[table].key
    event_keys = {tuple(d[k] for k in key_cols) for d in events}
    # One row per event (a line removal takes one line of its order).
    assert len(event_keys) == len(events) == 6
    after = snapshot(sim)
    for d in events:
        key = d[key_cols[0]] if len(key_cols) == 1 else tuple(d[k] for k in key_cols)
        assert key in before[table] and key not in after[table]
        assert CLOCK_START <= d["DeletedAt"] < CLOCK_START + timedelta(hours=3)
        assert d["RestoredAt"] is None
    assert sim.deleted_keys(table) == {
        d[key_cols[0]] if len(key_cols) == 1 else tuple(d[k] for k in key_cols) for d in events
    }


def test_h7_default_deletion_rates_are_far_below_one_percent_a_day(sim: SyncSimulator) -> None:
    """Defaults suit ~1,000 customers: scale the small database's row counts to that."""
    counts = sim.row_counts()
    per_1000 = {name: n * 1000 / CUSTOMERS for name, n in counts.items()}
    rates = ActivityRates()
    for rate, _, table, _ in KINDS:
        share_per_day = getattr(rates, rate) * 24 / per_1000[table]
        assert 0 < share_per_day < 0.005, (rate, share_per_day)
    assert {"customer_purges", "order_deletes", "account_deletes", "site_deletes"} <= set(
        PER_HOUR_RATES
    )


def test_h7_deletions_leave_no_orphans(busy: SyncSimulator) -> None:
    sim = busy
    for table in ("Customers", "Orders", "CustomerAccounts", "CustomerSites", "Payments"):
        assert sim.deleted_keys(table), f"no {table} deletion to check"
    with sim.connect() as con:
        orphans = {
            name: con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
            for name, sql in {
                "line without order": "SELECT OrderID FROM dbo.OrderDetails EXCEPT "
                "SELECT OrderID FROM dbo.Orders",
                "order without lines": "SELECT OrderID FROM dbo.Orders EXCEPT "
                "SELECT OrderID FROM dbo.OrderDetails",
                "order without customer": "SELECT CustomerID FROM dbo.Orders EXCEPT "
                "SELECT CustomerID FROM dbo.Customers",
                "payment without customer": "SELECT CustomerID FROM dbo.Payments EXCEPT "
                "SELECT CustomerID FROM dbo.Customers",
                "payment without order": "SELECT OrderID FROM dbo.Payments "
                "WHERE OrderID IS NOT NULL EXCEPT SELECT OrderID FROM dbo.Orders",
                "account without customer": "SELECT CustomerID FROM dbo.CustomerAccounts EXCEPT "
                "SELECT CustomerID FROM dbo.Customers",
                "site without customer": "SELECT CustomerID FROM dbo.CustomerSites EXCEPT "
                "SELECT CustomerID FROM dbo.Customers",
                "enroller missing": "SELECT EnrollerID FROM dbo.Customers "
                "WHERE EnrollerID IS NOT NULL EXCEPT SELECT CustomerID FROM dbo.Customers",
                "sponsor missing": "SELECT SponsorID FROM dbo.Customers "
                "WHERE SponsorID IS NOT NULL EXCEPT SELECT CustomerID FROM dbo.Customers",
                "return without original": "SELECT ParentOrderID FROM dbo.Orders "
                "WHERE ParentOrderID IS NOT NULL EXCEPT SELECT OrderID FROM dbo.Orders",
                "original without return": "SELECT ReturnOrderID FROM dbo.Orders "
                "WHERE ReturnOrderID IS NOT NULL EXCEPT SELECT OrderID FROM dbo.Orders",
            }.items()
        }
    assert orphans == dict.fromkeys(orphans, 0)


def test_h7_a_purge_takes_the_account_and_site_and_an_order_its_lines(
    busy: SyncSimulator,
) -> None:
    sim = busy
    purged = {d["CustomerID"]: d["DeletedAt"] for d in sim.deletions("Customers")}
    assert purged
    for table in ("CustomerAccounts", "CustomerSites"):
        assert not purged.keys() & keys(sim.current_rows(table), "CustomerID")
        with_purge = [d for d in sim.deletions(table) if d["Cause"] == "customer_purged"]
        assert {d["CustomerID"] for d in with_purge} <= purged.keys()
        assert all(d["DeletedAt"] == purged[d["CustomerID"]] for d in with_purge)
    # Every purged customer had its account row (every customer gets one at sign-up) unless
    # an account deletion took it earlier.
    accounts_gone = {d["CustomerID"] for d in sim.deletions("CustomerAccounts")}
    assert purged.keys() <= accounts_gone

    deleted_orders = {d["OrderID"]: d["DeletedAt"] for d in sim.deletions("Orders")}
    assert deleted_orders
    lines = [d for d in sim.deletions("OrderDetails") if d["Cause"] == "order_deleted"]
    assert {d["OrderID"] for d in lines} == deleted_orders.keys()
    assert all(d["DeletedAt"] == deleted_orders[d["OrderID"]] for d in lines)
    assert not deleted_orders.keys() & keys(sim.current_rows("OrderDetails"), "OrderID")
    # Only unpaid orders go: none of them ever had a payment.
    paid = keys(sim.current_rows("Payments"), "OrderID") | {
        p["OrderID"] for p in sim.deleted_payments()
    }
    assert not deleted_orders.keys() & paid
    # A purged customer never had an order that still exists.
    assert not purged.keys() & keys(sim.current_rows("Orders"), "CustomerID")


def test_h7_deletions_are_invisible_to_queue_refresh(sim: SyncSimulator) -> None:
    """Nothing but deletions happens: rows vanish, no ModifiedDate moves, so even a refresh
    from before the activity delivers nothing. Only comparing keys with dbo shows them."""
    before = snapshot(sim)
    summary = sim.advance(timedelta(hours=HOURS), DELETIONS_ONLY)
    assert all(
        summary[kind] == HOURS
        for kind in (
            "customers_purged",
            "orders_deleted",
            "accounts_deleted",
            "sites_deleted",
            "payments_deleted",
        )
    )
    result = sim.refresh(CLOCK_START - timedelta(minutes=1))
    assert result.row_counts == dict.fromkeys(REPLICATED_TABLES, 0)
    after = snapshot(sim)
    for table in REPLICATED_TABLES:
        gone = before[table].keys() - after[table].keys()
        assert gone == sim.deleted_keys(table), table
        # every surviving row is untouched
        assert all(before[table][k] == row for k, row in after[table].items()), table


def test_h7_deleted_rows_are_kept_exactly_as_they_were(sim: SyncSimulator) -> None:
    """One sub-step of deletions: the archive holds each row exactly as dbo had it."""
    before = snapshot(sim)
    sim.advance(timedelta(hours=1), replace(DELETIONS_ONLY, line_removals=2.0))
    for table, spec in REPLICATED_TABLES.items():
        rows = sim.deleted_rows(table)
        assert rows, table
        for row in rows:
            key = row[spec.key[0]] if len(spec.key) == 1 else tuple(row[k] for k in spec.key)
            assert row == before[table][key], (table, key)


def test_h7_deletions_are_back_dated_with_replication_lag(sim: SyncSimulator) -> None:
    """With a lag, a deletion's time moves back with its event, never to or before the last
    change of a row it deleted, and the rows deleted together share it."""
    lag = timedelta(minutes=45)
    before = snapshot(sim)
    sim.advance(timedelta(hours=3), replace(DELETIONS_ONLY, replication_lag=lag))
    back_dated = 0
    for table, spec in REPLICATED_TABLES.items():
        for d in sim.deletions(table):
            key = d[spec.key[0]] if len(spec.key) == 1 else tuple(d[k] for k in spec.key)
            assert CLOCK_START - lag <= d["DeletedAt"] < CLOCK_START + timedelta(hours=3)
            if spec.version_time_column:
                assert d["DeletedAt"] > before[table][key]["ModifiedDate"]
            back_dated += d["DeletedAt"] < CLOCK_START
    assert back_dated > 0
    purged = {d["CustomerID"]: d["DeletedAt"] for d in sim.deletions("Customers")}
    for table in ("CustomerAccounts", "CustomerSites"):
        for d in sim.deletions(table):
            if d["Cause"] == "customer_purged":
                assert d["DeletedAt"] == purged[d["CustomerID"]]


def test_old_simulator_files_are_refused_with_a_clear_message(sim: SyncSimulator) -> None:
    with sim.connect(read_only=False) as con:
        con.execute("DROP TABLE sim.EmptiedTables")
    with pytest.raises(SimulatorError, match="older simulator"):
        SyncSimulator(sim.path)
