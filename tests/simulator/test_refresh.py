"""queue.Refresh behaves exactly as the vendor note describes (issue 2, contract W1/R3)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator import SimulatorError, SyncSimulator
from tests.simulator.helpers import BUSY, QUIET, keys


def _queue_matches_changes_since(sim: SyncSimulator, since: datetime) -> None:
    """Every queue table holds exactly the dbo rows a refresh from `since` must deliver."""
    for name, table in REPLICATED_TABLES.items():
        expected = sim.changed_since(name, since)
        actual = sim.queue_rows(name)
        assert actual == expected, f"queue.{name} differs from dbo changes since {since}"
        if table.version_time_column:
            assert all(r["ModifiedDate"] >= since for r in actual)


def test_first_refresh_takes_the_last_24_hours(sim: SyncSimulator) -> None:
    result = sim.refresh()
    now = sim.now()
    assert result.requested_start is None
    assert result.refresh_started_at == result.refresh_finished_at == now
    _queue_matches_changes_since(sim, now - timedelta(hours=24))
    # the base history spans 30 days, so older rows exist and were left out
    assert len(sim.current_rows("Customers")) > result.row_counts["Customers"] > 0
    assert result.row_counts == sim.row_counts("queue")


def test_later_refresh_takes_changes_since_the_previous_call(sim: SyncSimulator) -> None:
    first = sim.refresh()
    sim.advance(timedelta(hours=2), BUSY)
    second = sim.refresh()
    assert second.refresh_started_at == first.refresh_started_at + timedelta(hours=2)
    _queue_matches_changes_since(sim, first.refresh_started_at)
    assert second.row_counts["Orders"] > 0
    assert sim.last_refresh_time() == second.refresh_started_at


def test_explicit_start_takes_changes_since_it_and_the_next_call_resumes(
    sim: SyncSimulator,
) -> None:
    sim.refresh()
    sim.advance(timedelta(hours=1), BUSY)
    backfill_from = datetime(2017, 1, 1)
    explicit = sim.refresh(backfill_from)
    assert explicit.requested_start == backfill_from
    # everything changed since 2017 = the whole source
    _queue_matches_changes_since(sim, backfill_from)
    assert explicit.row_counts == sim.row_counts("dbo")

    sim.advance(timedelta(hours=1), BUSY)
    sim.refresh()
    _queue_matches_changes_since(sim, explicit.refresh_started_at)


def test_refresh_replaces_every_queue_table_whole(sim: SyncSimulator) -> None:
    sim.refresh(datetime(2017, 1, 1))
    assert all(n > 0 for n in sim.row_counts("queue").values())
    sim.advance(timedelta(minutes=30), QUIET)
    result = sim.refresh()
    # nothing changed since the previous call: every table is emptied, none keeps old rows
    assert result.row_counts == dict.fromkeys(REPLICATED_TABLES, 0)
    assert sim.row_counts("queue") == result.row_counts


def test_refresh_right_after_a_refresh_is_empty(sim: SyncSimulator) -> None:
    sim.refresh()
    assert sum(sim.refresh().row_counts.values()) == 0


def test_changed_order_brings_all_its_current_lines_and_no_removed_line(
    sim: SyncSimulator,
) -> None:
    before = sim.now()
    sim.advance(timedelta(hours=4), BUSY)
    removed = sim.removed_order_lines()
    assert removed, "expected the activity to remove some order lines"
    sim.refresh(before)

    queue_orders = keys(sim.queue_rows("Orders"), "OrderID")
    queue_lines = keys(sim.queue_rows("OrderDetails"), "OrderID", "OrderLine")
    dbo_lines = keys(sim.current_rows("OrderDetails"), "OrderID", "OrderLine")
    assert queue_lines == {line for line in dbo_lines if line[0] in queue_orders}
    # the order of every removed line changed, so it is in the batch, without that line
    assert {order_id for order_id, _ in removed} <= queue_orders
    assert not removed & queue_lines


def test_order_lines_travel_only_with_their_changed_order(sim: SyncSimulator) -> None:
    sim.refresh()
    sim.advance(timedelta(hours=1), BUSY)
    sim.refresh()
    queue_orders = keys(sim.queue_rows("Orders"), "OrderID")
    assert {r["OrderID"] for r in sim.queue_rows("OrderDetails")} <= queue_orders


def test_second_consumer_call_moves_the_default_window_for_everyone(
    sim: SyncSimulator,
) -> None:
    ours = sim.refresh()
    sim.advance(timedelta(hours=2), BUSY)
    theirs = SyncSimulator(sim.path).refresh()  # another consumer of the same database
    sim.advance(timedelta(hours=1), BUSY)

    missed = keys(sim.changed_since("Customers", ours.refresh_started_at), "CustomerID") - keys(
        sim.changed_since("Customers", theirs.refresh_started_at), "CustomerID"
    )
    assert missed, "expected customers changed only between the two consumers' calls"

    sim.refresh()  # no start: resumes from the OTHER consumer's call, as in real life
    _queue_matches_changes_since(sim, theirs.refresh_started_at)
    assert not missed & keys(sim.queue_rows("Customers"), "CustomerID")

    sim.refresh(ours.refresh_started_at)  # an explicit start (contract W1) recovers them
    assert missed <= keys(sim.queue_rows("Customers"), "CustomerID")


def test_queue_tables_have_exactly_the_dbo_columns(sim: SyncSimulator) -> None:
    sim.refresh()
    with sim.connect() as con:
        for name in REPLICATED_TABLES:
            cols = (
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position"
            )
            dbo = con.execute(cols, ["dbo", name]).fetchall()
            queue = con.execute(cols, ["queue", name]).fetchall()
            assert queue == dbo, name


def test_refresh_holds_no_connection_so_dbt_can_attach_read_only(sim: SyncSimulator) -> None:
    sim.refresh()
    con = duckdb.connect(str(sim.path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM queue.Customers").fetchone()[0] >= 0
    finally:
        con.close()


def test_added_source_column_is_carried_by_the_next_refresh(sim: SyncSimulator) -> None:
    sim.add_source_column("Customers", "LoyaltyTier", "nvarchar(20)")
    sim.advance(timedelta(hours=1), BUSY)  # generation keeps working with the extra column
    edited_at = sim.now() - timedelta(minutes=1)
    with sim.connect(read_only=False) as con:
        con.execute(
            "UPDATE dbo.Customers SET LoyaltyTier = 'Gold', ModifiedDate = ? WHERE CustomerID = 1",
            [edited_at],
        )
    sim.refresh(edited_at)
    rows = sim.queue_rows("Customers")
    assert rows and all("LoyaltyTier" in r for r in rows)
    assert {r["CustomerID"]: r["LoyaltyTier"] for r in rows}[1] == "Gold"


def test_dropped_source_column_disappears_from_the_next_refresh(sim: SyncSimulator) -> None:
    sim.refresh()
    assert "Fax" in sim.queue_rows("Customers")[0]
    sim.drop_source_column("Customers", "Fax")
    sim.advance(timedelta(hours=1), BUSY)  # generation skips the dropped column
    sim.refresh(datetime(2017, 1, 1))
    assert "Fax" not in sim.queue_rows("Customers")[0]


def test_source_columns_the_procedure_or_generator_need_cannot_be_dropped(
    sim: SyncSimulator,
) -> None:
    for table, column in (
        ("Customers", "CustomerID"),
        ("Orders", "ModifiedDate"),
        ("OrderDetails", "OrderLine"),
        ("Orders", "OrderStatusID"),
    ):
        with pytest.raises(SimulatorError, match="cannot be dropped"):
            sim.drop_source_column(table, column)
    with pytest.raises(SimulatorError, match="already has"):
        sim.add_source_column("Customers", "fax", "nvarchar(20)")
    for bad in ("", "x" * 129):
        with pytest.raises(SimulatorError, match="not a valid column name"):
            sim.add_source_column("Customers", bad, "int")


def test_any_name_sql_server_takes_is_carried_quoted(sim: SyncSimulator) -> None:
    """SQL Server takes any delimited name: so does the simulator, and carries it safely."""
    hostile = 'x"; DROP TABLE dbo.Orders; --'
    sim.add_source_column("Customers", hostile, "int")
    sim.add_source_column("Customers", "a'b", "nvarchar(10)")
    sim.advance(timedelta(hours=1), BUSY)  # generation writes rows with the odd columns
    sim.refresh(datetime(2017, 1, 1))
    row = sim.queue_rows("Customers")[0]
    assert hostile in row and "a'b" in row
    assert sim.queue_rows("Orders"), "dbo.Orders is still there"
