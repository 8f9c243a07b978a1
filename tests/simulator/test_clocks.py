"""The clock model: the server's clock (what queue.Refresh records and the pipeline reads as
"now") apart from the data's clock (what stamps ModifiedDate): a server clock offset (a UTC
server, a drifting clock), a local-time source across its daylight-saving fall-back, and
operator stamps at SQL Server's datetime limits."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.cli import app
from exigo_sync.simulator import ActivityRates, ClockModel, SimulatorError, SyncSimulator
from exigo_sync.source.duckdb_client import DuckDbSourceClient
from tests.simulator.helpers import BUSY, CLOCK_START, CUSTOMERS, QUIET, SEED, full_snapshot

CHICAGO = "America/Chicago"
# 2026-11-01 02:00 CDT (UTC-5) becomes 01:00 CST (UTC-6): the wall clock repeats 01:00-02:00.
FALL_BACK = datetime(2026, 11, 1, 7, 0)  # UTC
TIMED = [n for n, t in REPLICATED_TABLES.items() if t.version_time_column is not None]
# Enough changes per 20 minutes at 300 customers that some rows change on both sides of the
# fall-back.
RUSH = ActivityRates().scaled(30)
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 997000)
FAR_PAST = datetime(1753, 1, 1)

Stamps = dict[str, dict[Any, Any]]


def wall_time(utc: datetime, zone: str = CHICAGO) -> datetime:
    """`utc` (naive) as the naive wall time in `zone`, by Python's zoneinfo (not the ICU the
    simulator uses: the two must agree)."""
    return utc.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def _key(table: str, row: dict[str, Any]) -> Any:
    k = REPLICATED_TABLES[table].key
    return row[k[0]] if len(k) == 1 else tuple(row[c] for c in k)


def stamps(sim: SyncSimulator) -> Stamps:
    """ModifiedDate of every dbo row now, per timed table, by key."""
    return {n: _keys(sim, "dbo", n) for n in TIMED}


def changed(before: Stamps, after: Stamps) -> dict[str, set[Any]]:
    return {n: {k for k, v in after[n].items() if before[n].get(k) != v} for n in TIMED}


def _keys(sim: SyncSimulator, schema: str, name: str) -> dict[Any, datetime | None]:
    """Keys of <schema>.<name>, each with its ModifiedDate (None for order lines)."""
    key = REPLICATED_TABLES[name].key
    stamp = "ModifiedDate" if name in TIMED else "NULL"
    with sim.connect() as con:
        rows = con.execute(
            f"SELECT {', '.join(key)}, {stamp} FROM {schema}.{name}"  # names from the catalogue
        ).fetchall()
    return {(r[0] if len(key) == 1 else tuple(r[:-1])): r[-1] for r in rows}


def queue_keys(sim: SyncSimulator) -> dict[str, set[Any]]:
    return {n: set(_keys(sim, "queue", n)) for n in REPLICATED_TABLES}


def assert_queue_is_exactly_modified_since(sim: SyncSimulator, start: datetime) -> None:
    """Every queue table holds exactly the dbo rows with ModifiedDate >= start (order lines: the
    current lines of those orders), whatever the clock model."""
    queued = queue_keys(sim)
    for name in TIMED:
        expected = {k for k, stamp in _keys(sim, "dbo", name).items() if stamp >= start}
        assert queued[name] == expected, name
    orders = queued["Orders"]
    lines = _keys(sim, "dbo", "OrderDetails")
    assert queued["OrderDetails"] == {line for line in lines if line[0] in orders}


# --- (a) a server clock offset --------------------------------------------------------------


@pytest.mark.parametrize("offset_minutes", [120.0, -120.0])
def test_offset_puts_refresh_times_on_the_server_clock_and_modified_date_on_the_data_clock(
    tmp_path: Path, offset_minutes: float
) -> None:
    offset = timedelta(minutes=offset_minutes)
    sim = SyncSimulator.create(
        tmp_path / "s.duckdb",
        seed=SEED,
        customers=CUSTOMERS,
        clock_start=CLOCK_START,
        server_clock_offset_minutes=offset_minutes,
    )
    assert sim.simulation_time() == sim.data_now() == CLOCK_START
    assert sim.now() == sim.utc_now() == CLOCK_START + offset  # a UTC server
    assert DuckDbSourceClient(sim.path).source_clock() == sim.now()  # the pipeline's "now"

    first = sim.refresh()
    assert first.refresh_started_at == first.refresh_finished_at == CLOCK_START + offset
    assert sim.last_refresh_time() == CLOCK_START + offset
    # The first call's 24 hours are counted back from the server's clock, on ModifiedDate.
    assert_queue_is_exactly_modified_since(sim, CLOCK_START + offset - timedelta(hours=24))

    before = stamps(sim)
    summary = sim.advance(timedelta(hours=2), BUSY)
    end = CLOCK_START + timedelta(hours=2)
    assert (summary.started_at, summary.finished_at) == (CLOCK_START, end)
    assert sim.simulation_time() == sim.data_now() == end
    assert sim.now() == sim.utc_now() == end + offset
    after = stamps(sim)
    landed = changed(before, after)
    assert all(landed.values())
    for name in TIMED:  # the advance's changes are stamped on the data's clock
        assert all(CLOCK_START <= after[name][k] < end for k in landed[name]), name

    second = sim.refresh()  # no start: from the previous call's (server-clock) time
    assert second.refresh_started_at == sim.last_refresh_time() == end + offset
    assert_queue_is_exactly_modified_since(sim, CLOCK_START + offset)
    queued = queue_keys(sim)
    if offset > timedelta(0):
        # the server clock runs ahead: a 2-hour window resumed from it misses every change
        assert not any(queued[n] & landed[n] for n in TIMED)
    else:
        # the server clock runs behind: a wider window, nothing missed
        assert all(landed[n] <= queued[n] for n in TIMED)

    sim.refresh(CLOCK_START)  # an explicit start filters on ModifiedDate, not the server clock
    assert_queue_is_exactly_modified_since(sim, CLOCK_START)
    queued = queue_keys(sim)
    assert all(landed[n] <= queued[n] for n in TIMED)


def test_emptied_and_restored_times_are_server_clock_deleted_at_data_clock(
    tmp_path: Path,
) -> None:
    sim = SyncSimulator.create(
        tmp_path / "s.duckdb", seed=SEED, customers=CUSTOMERS, server_clock_offset_minutes=-90
    )
    start = sim.simulation_time()
    sim.advance(timedelta(hours=2), replace(QUIET, payment_deletes=2.0))
    deleted = sim.deleted_payments()
    assert deleted and all(start <= d["DeletedAt"] < sim.simulation_time() for d in deleted)
    sim.restore_deleted("Payments", 1)
    restored = [d for d in sim.deletions("Payments") if d["RestoredAt"] is not None]
    assert [d["RestoredAt"] for d in restored] == [sim.now()]
    sim.empty_table("Orders")
    assert sim.emptied_tables() == {"Orders": sim.now()}


# --- (b) a local-time source across its fall-back ---------------------------------------------


def test_fall_back_instant_is_where_zoneinfo_puts_it() -> None:
    assert wall_time(FALL_BACK - timedelta(minutes=1)) == datetime(2026, 11, 1, 1, 59)
    assert wall_time(FALL_BACK) == datetime(2026, 11, 1, 1, 0)


@pytest.fixture(scope="module")
def chicago_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chicago-time source whose clock is an hour before the fall-back (01:00 CDT)."""
    path = tmp_path_factory.mktemp("chicago") / "sync.duckdb"
    SyncSimulator.create(
        path,
        seed=SEED,
        customers=CUSTOMERS,
        clock_start=FALL_BACK - timedelta(hours=1),
        local_time_zone=CHICAGO,
    )
    return path


@pytest.fixture
def chicago(chicago_template: Path, tmp_path: Path) -> SyncSimulator:
    path = tmp_path / "sync.duckdb"
    shutil.copyfile(chicago_template, path)
    return SyncSimulator(path)


def test_local_time_source_stamps_and_reads_local_wall_time(chicago: SyncSimulator) -> None:
    utc = FALL_BACK - timedelta(hours=1)
    now = chicago.now()
    assert chicago.clock_model() == ClockModel(local_time_zone=CHICAGO)
    assert chicago.simulation_time() == chicago.utc_now() == utc
    assert now == chicago.data_now() == wall_time(utc) == datetime(2026, 11, 1, 1, 0)
    assert DuckDbSourceClient(chicago.path).source_clock() == now
    # the base history, generated in UTC, is stamped in local time: nothing after local now
    base = stamps(chicago)
    assert all(max(base[name].values()) < now for name in TIMED)
    orders = chicago.current_rows("Orders")
    assert all(o["OrderDate"] <= o["ModifiedDate"] < now for o in orders)


def test_fall_back_sets_the_server_clock_back_and_a_later_version_stamped_earlier(
    chicago: SyncSimulator,
) -> None:
    step = timedelta(minutes=20)  # 06:00Z..07:40Z: no step straddles the fall-back
    readings = [(chicago.utc_now(), chicago.now())]
    backwards: dict[str, set[Any]] = {n: set() for n in TIMED}
    previous = stamps(chicago)
    for _ in range(5):
        t0 = chicago.simulation_time()
        chicago.advance(step, RUSH)
        current = stamps(chicago)
        for name, keys in changed(previous, current).items():
            for k in keys:  # stamped with the local wall time of when they changed
                assert wall_time(t0) <= current[name][k] < wall_time(t0) + step, (name, k)
                if k in previous[name] and current[name][k] < previous[name][k]:
                    backwards[name].add(k)
        previous = current
        readings.append((chicago.utc_now(), chicago.now()))

    utc_times = [u for u, _ in readings]
    assert utc_times == [FALL_BACK - timedelta(hours=1) + i * step for i in range(6)]
    assert all(now == wall_time(utc) for utc, now in readings)
    offsets = [now - utc for utc, now in readings]
    assert offsets == [timedelta(hours=-5)] * 3 + [timedelta(hours=-6)] * 3
    # at the fall-back the server clock reads an hour earlier relative to UTC: back from 01:40
    assert readings[2][1] == datetime(2026, 11, 1, 1, 40)
    assert readings[3][1] == datetime(2026, 11, 1, 1, 0)
    # a row changed before the fall-back and again after it: the new version is stamped earlier
    assert any(backwards.values())
    assert sum(map(len, backwards.values())) >= 3


def test_after_fall_back_resuming_from_the_previous_call_misses_changes_an_hour_back_recovers(
    chicago: SyncSimulator,
) -> None:
    chicago.advance(timedelta(minutes=40), RUSH)  # 06:40Z = 01:40 CDT
    first = chicago.refresh()
    assert first.refresh_started_at == datetime(2026, 11, 1, 1, 40)
    before = stamps(chicago)
    chicago.advance(timedelta(minutes=20), RUSH)  # to the fall-back
    chicago.advance(timedelta(minutes=20), RUSH)  # 07:20Z = 01:20 CST
    landed = changed(before, stamps(chicago))
    second = chicago.refresh()
    assert second.refresh_started_at == datetime(2026, 11, 1, 1, 20) < first.refresh_started_at
    assert_queue_is_exactly_modified_since(chicago, first.refresh_started_at)
    queued = queue_keys(chicago)
    assert any(landed[n] - queued[n] for n in TIMED), "expected changes stamped 01:00-01:20 CST"

    chicago.refresh(first.refresh_started_at - timedelta(hours=1))
    queued = queue_keys(chicago)
    assert all(landed[n] <= queued[n] for n in TIMED)


def test_local_time_with_replication_lag_keeps_lag_and_order_on_the_utc_time_line(
    chicago: SyncSimulator,
) -> None:
    lag = timedelta(minutes=30)
    rates = replace(BUSY, replication_lag=lag)
    utc_start = chicago.simulation_time()
    before = stamps(chicago)
    previous = before
    for _ in range(4):  # 06:00Z..08:00Z, across the fall-back
        chicago.advance(timedelta(minutes=30), rates)
        current = stamps(chicago)
        for name, keys in changed(previous, current).items():
            for k in keys:
                old, new = previous[name].get(k), current[name][k]
                # away from the repeated hour a row's versions still move forward
                if old is not None and not (_repeated(old) or _repeated(new)):
                    assert new > old, (name, k)
        previous = current
    landed = changed(before, previous)
    earliest, now = wall_time(utc_start - lag), chicago.now()
    for name in TIMED:
        assert all(earliest <= previous[name][k] < now for k in landed[name]), name
    assert any(previous[n][k] < wall_time(utc_start) for n in TIMED for k in landed[n])
    deleted = chicago.deleted_payments()
    assert deleted and all(earliest <= d["DeletedAt"] < now for d in deleted)


def _repeated(wall: datetime) -> bool:
    """A wall time the fall-back shows twice."""
    return datetime(2026, 11, 1, 1, 0) <= wall < datetime(2026, 11, 1, 2, 0)


# --- (c) operator stamps -----------------------------------------------------------------------


def test_edit_row_stamps_datetime_limits_and_a_clock_gone_back_refresh_filters_exactly(
    sim: SyncSimulator,
) -> None:
    customer_3 = sim.current_rows("Customers")[2]
    earlier = customer_3["ModifiedDate"] - timedelta(days=3)
    edited = sim.edit_row("Customers", 1, {"Email": "far.future@example.com"}, FAR_FUTURE)
    assert edited["ModifiedDate"] == FAR_FUTURE and edited["Email"] == "far.future@example.com"
    assert sim.edit_row("Customers", 2, {}, FAR_PAST)["ModifiedDate"] == FAR_PAST
    edited = sim.edit_row("Customers", 3, {"Phone": "(555) 010-0000"}, earlier)
    assert edited["ModifiedDate"] == earlier < customer_3["ModifiedDate"]

    line = sim.current_rows("OrderDetails")[0]
    key = (line["OrderID"], line["OrderLine"])
    stamp = CLOCK_START - timedelta(minutes=5)
    assert (
        sim.edit_row("OrderDetails", key, {"Reference1": "fixed"}, stamp)["Reference1"] == "fixed"
    )
    order = next(o for o in sim.current_rows("Orders") if o["OrderID"] == line["OrderID"])
    assert order["ModifiedDate"] == stamp  # a line has no stamp: its order takes it

    new_id = max(r["CustomerID"] for r in sim.current_rows("Customers")) + 100
    row = sim.insert_row(
        "Customers",
        {"CustomerID": new_id, "FirstName": "Min", "LastName": "Date", "ModifiedDate": FAR_PAST},
    )
    assert row["ModifiedDate"] == FAR_PAST and row["CreatedDate"] == datetime(1900, 1, 1)
    payment_id = max(r["PaymentID"] for r in sim.current_rows("Payments")) + 1
    payment = sim.insert_row(
        "Payments",
        {"PaymentID": payment_id, "CustomerID": new_id, "PaymentDate": FAR_PAST, "Amount": 12.5},
    )
    assert payment["ModifiedDate"] == sim.data_now() and payment["OrderID"] is None
    order_id = max(r["OrderID"] for r in sim.current_rows("Orders")) + 1
    sim.insert_row("Orders", {"OrderID": order_id, "CustomerID": new_id, "ModifiedDate": FAR_PAST})
    sim.insert_row("OrderDetails", {"OrderID": order_id, "OrderLine": 1, "ItemCode": "X"})
    assert _keys(sim, "dbo", "Orders")[order_id] == sim.data_now()  # a new line bumps its order
    sim.edit_row("Orders", order_id, {"Notes": "back-dated"}, FAR_PAST)

    for start in (FAR_PAST, earlier, CLOCK_START - timedelta(hours=1), FAR_FUTURE):
        result = sim.refresh(start)
        assert result.requested_start == start
        assert_queue_is_exactly_modified_since(sim, start)
    assert queue_keys(sim)["Customers"] == {1}  # only the far-future stamp is >= 9999-12-31

    # The generator leaves the future-stamped row alone and numbers past the inserted ids.
    future_stamped = _customer(sim, 1)
    sim.advance(timedelta(hours=2), BUSY)
    assert _customer(sim, 1) == future_stamped
    assert any(c["CustomerID"] > new_id for c in sim.current_rows("Customers"))
    assert any(o > order_id for o in _keys(sim, "dbo", "Orders"))


def _customer(sim: SyncSimulator, customer_id: int) -> dict[str, Any]:
    return next(c for c in sim.current_rows("Customers") if c["CustomerID"] == customer_id)


def test_operator_edits_refuse_what_sql_server_or_the_source_would_not_hold(
    sim: SyncSimulator,
) -> None:
    stamp = CLOCK_START
    for args, message in [
        (("Customers", 1, {}, datetime(1752, 12, 31, 23, 59)), "datetime range"),
        (("Customers", 1, {}, datetime(2026, 1, 1, tzinfo=UTC)), "naive"),
        (("Customers", 1, {"NoSuchColumn": 1}, stamp), "no column"),
        (("Customers", 1, {"CustomerID": 5}, stamp), "cannot change"),
        (("Customers", 1, {"ModifiedDate": stamp}, stamp), "modified_date"),
        (("Customers", 10**9, {}, stamp), "no row"),
        (("OrderDetails", 1, {}, stamp), r"key is \(OrderID, OrderLine\)"),
        (("Customers", 1, {"CustomerTypeID": "not a number"}, stamp), "cannot edit"),
        (("Bogus", 1, {}, stamp), "unknown table"),
    ]:
        with pytest.raises(SimulatorError, match=message):
            sim.edit_row(*args)
    existing = sim.current_rows("Payments")[0]
    for values, message in [
        ({"FirstName": "x"}, "needs its key"),
        ({"CustomerID": 1}, "already has"),
        ({"CustomerID": 10**6, "EnrollerID": 10**7}, "no such row"),
        ({"CustomerID": 10**6, "Email": None}, "cannot insert"),
    ]:
        with pytest.raises(SimulatorError, match=message):
            sim.insert_row("Customers", values)
    with pytest.raises(SimulatorError, match="no such row"):
        sim.insert_row("Payments", {"PaymentID": 10**6, "OrderID": 10**7})
    sim.empty_table("Payments")
    with pytest.raises(SimulatorError, match="emptied"):
        sim.edit_row("Payments", existing["PaymentID"], {}, stamp)
    sim.restore_table("Payments")
    sim.advance(timedelta(hours=3), replace(QUIET, payment_deletes=2.0))
    gone = min(sim.deleted_keys("Payments"))
    with pytest.raises(SimulatorError, match="restore_deleted"):
        sim.insert_row("Payments", {"PaymentID": gone})


# --- (d) the model is stored in the file --------------------------------------------------------


def test_clock_model_survives_reopening_and_can_change(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    SyncSimulator.create(path, customers=20, local_time_zone=CHICAGO)
    assert SyncSimulator(path).clock_model() == ClockModel(0.0, CHICAGO)

    sim = SyncSimulator(path)
    sim.set_clock_model(ClockModel(server_clock_offset_minutes=-30))
    reopened = SyncSimulator(path)
    assert reopened.clock_model() == ClockModel(-30.0, None)
    assert reopened.now() == reopened.simulation_time() - timedelta(minutes=30)
    for model, message in [
        (ClockModel(5.0, CHICAGO), "cannot be combined"),
        (ClockModel(local_time_zone="Europe/Paris"), "not west of UTC"),
        (ClockModel(local_time_zone="Australia/Sydney"), "not west of UTC"),
        (ClockModel(local_time_zone="Mars/Olympus_Mons"), "unknown time zone"),
        (ClockModel(float("inf")), "finite"),
    ]:
        with pytest.raises(SimulatorError, match=message):
            reopened.set_clock_model(model)
    assert SyncSimulator(path).clock_model() == ClockModel(-30.0, None)  # refusals change nothing
    with pytest.raises(SimulatorError, match="not west of UTC"):
        SyncSimulator.create(tmp_path / "east.duckdb", customers=5, local_time_zone="Asia/Tokyo")
    assert not (tmp_path / "east.duckdb").exists()


def test_file_without_the_clock_rows_reads_one_clock(sim: SyncSimulator) -> None:
    with sim.connect(read_only=False) as con:  # as a file made before the model existed
        con.execute(
            "DELETE FROM sim.Settings WHERE Name IN "
            "('server_clock_offset_minutes', 'local_time_zone')"
        )
    assert sim.clock_model() == ClockModel()
    assert sim.now() == sim.utc_now() == sim.simulation_time() == sim.data_now() == CLOCK_START
    sim.advance(timedelta(hours=1), BUSY)
    assert sim.refresh().refresh_started_at == CLOCK_START + timedelta(hours=1)


# --- (e) determinism -----------------------------------------------------------------------------


def _run(path: Path, **model: Any) -> dict[str, list]:
    sim = SyncSimulator.create(
        path, seed=11, customers=150, clock_start=FALL_BACK - timedelta(hours=1), **model
    )
    sim.refresh()
    sim.advance(timedelta(hours=2), replace(BUSY, replication_lag=timedelta(minutes=20)))
    sim.refresh()
    out = full_snapshot(sim)
    out["queue.Orders"] = sim.queue_rows("Orders")
    return out


def test_same_seed_and_clock_model_give_identical_data(tmp_path: Path) -> None:
    a = _run(tmp_path / "a.duckdb", local_time_zone=CHICAGO)
    assert a == _run(tmp_path / "b.duckdb", local_time_zone=CHICAGO)
    assert (
        a["Customers"]
        != _run(tmp_path / "c.duckdb", local_time_zone="America/New_York")["Customers"]
    )
    utc = _run(tmp_path / "d.duckdb")
    offset = _run(tmp_path / "e.duckdb", server_clock_offset_minutes=90)
    # an offset moves the server clock only: the same rows, the same stamps
    assert all(offset[name] == utc[name] for name in REPLICATED_TABLES)


# --- CLI ---------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_create_with_a_clock_model_and_show_and_change_it(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    result = runner.invoke(
        app,
        ["simulate", "create", db, "--customers", "20", "--server-clock-offset-minutes", "-120"],
    )
    assert result.exit_code == 0, result.output
    assert SyncSimulator(db).clock_model() == ClockModel(-120.0, None)
    result = runner.invoke(app, ["simulate", "clock", db])
    assert result.exit_code == 0, result.output
    for text in ("SYSDATETIME", "SYSUTCDATETIME", "simulator time", "2026-01-04 22:00:00"):
        assert text in result.output

    result = runner.invoke(
        app,
        [
            "simulate",
            "clock",
            db,
            "--server-clock-offset-minutes",
            "0",
            "--local-time-zone",
            CHICAGO,
        ],
    )
    assert result.exit_code == 0, result.output
    assert SyncSimulator(db).clock_model() == ClockModel(0.0, CHICAGO)
    assert "2026-01-04 18:00:00" in result.output  # 00:00 UTC in Chicago (CST)
    result = runner.invoke(app, ["simulate", "clock", db, "--local-time-zone", "none"])
    assert result.exit_code == 0, result.output
    assert SyncSimulator(db).clock_model() == ClockModel()

    db2 = str(tmp_path / "z.duckdb")
    result = runner.invoke(
        app, ["simulate", "create", db2, "--customers", "20", "--local-time-zone", CHICAGO]
    )
    assert result.exit_code == 0, result.output
    assert SyncSimulator(db2).now() == datetime(2026, 1, 4, 18, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clock", "{db}", "--local-time-zone", "Europe/Paris"], "not west of UTC"),
        (["clock", "{db}", "--local-time-zone", "Nowhere/Land"], "unknown time zone"),
        (["clock", "{db}", "--server-clock-offset-minutes", "abc"], "--server-clock-offset"),
        (["clock", "{db}", "--server-clock-offset-minutes", "1e9"], "at most"),
        (["clock", "{new}"], "no simulator database"),
        (["create", "{new}", "--local-time-zone", "Asia/Tokyo"], "not west of UTC"),
        (
            ["create", "{new}", "--local-time-zone", CHICAGO, "--server-clock-offset-minutes", "5"],
            "cannot be combined",
        ),
    ],
)
def test_cli_clock_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "s.duckdb"
    SyncSimulator.create(db, customers=5)
    new = tmp_path / "new.duckdb"
    result = runner.invoke(app, ["simulate", *[a.format(db=db, new=new) for a in args]])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert not new.exists()
    assert SyncSimulator(db).clock_model() == ClockModel()
