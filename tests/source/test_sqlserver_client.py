"""The SQL Server source client (exigo_sync.source.sqlserver_client), short of a live server.
(The connection and error modules it builds on, shared with the warehouse: tests/sqlserver/
test_connection.py and test_errors.py.)

Most tests drive `SqlServerSourceClient` through its `connect` seam with `RecordingConnection`
(tests/sqlserver/doubles.py), a DB-API double that records every SQL text, parameter (value and
Python type), the autocommit state and `timeout` at each execute, every `nextset()`, and raises
real pyodbc exceptions (`args = (sqlstate, message)`) when told to. What a double cannot prove:
how a real server and driver answer (the live tests in tests/sqlserver/ do, where a server is
configured). A few tests use the real drivers installed here (pyodbc + FreeTDS, mssql-python)
against a closed local port: they prove the error path end to end, not a successful login.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from typing import Any

import pyodbc
import pytest

from exigo_sync import sqlserver as mssql
from exigo_sync.catalog import QUEUE_TABLES
from exigo_sync.profiles import Target
from exigo_sync.snapshot import from_row
from exigo_sync.source import SourceError, TransientSourceError
from exigo_sync.source import sqlserver_client as client_mod
from exigo_sync.source.sqlserver_client import SqlServerSourceClient, to_sql_datetime
from exigo_sync.topology import Topology
from tests.sqlserver.doubles import (
    CLOCK,
    UTC_OFFSET,
    Outcome,
    RecordingConnection,
    RecordingDriver,
    default_responder,
    fingerprint_row,
    odbc_error,
)
from tests.sqlserver.targets import PASSWORD, sqlserver_target
from tests.sqlserver.tsql import parse_tsql


def client(driver: RecordingDriver, **kwargs: Any) -> SqlServerSourceClient:
    kwargs.setdefault("database", "ExigoSync")
    return SqlServerSourceClient(sqlserver_target(), connect=driver.open, **kwargs)


# --- refresh: SQL, parameter, autocommit, draining, timeout, clock, counts ------------------


def test_refresh_sends_one_batch_with_the_start_bound_as_a_datetime() -> None:
    """Proves the exact SQL and order of statements, that the start is bound (never formatted
    into the SQL) as a Python datetime floored to the `datetime` grid, that the refresh, each
    queue table's fingerprint and the finish clock run in ONE transaction (autocommit off before
    the first statement, one commit at the end, R3), and that the clocks, the UTC offset, the row
    counts and the fingerprints come from the server. Cannot prove how the driver declares the
    parameter on the wire (the `DECLARE @start datetime` conversion makes that irrelevant; the
    live test runs it), nor that the server holds the queue tables' locks until the commit."""
    driver = RecordingDriver()
    start = datetime(2026, 1, 4, 23, 50, 0, 123999)
    result = client(driver).refresh(start)

    expected_start = datetime(2026, 1, 4, 23, 50, 0, 123000)
    assert driver.log.sql() == [
        "SELECT SYSDATETIME()",
        "SET NOCOUNT ON; DECLARE @start datetime = ?; EXEC queue.Refresh @start",
        *(client_mod.fingerprint_query(t) for t in QUEUE_TABLES),
        "SELECT SYSDATETIME(), SYSUTCDATETIME()",
    ]
    assert client_mod.fingerprint_query("Orders") == (
        "SELECT COUNT(*), SUM(CAST([OrderID] AS BIGINT)), MIN([ModifiedDate]), "
        "MAX([ModifiedDate]) FROM queue.[Orders]"
    )
    exec_call = driver.log.calls[1]
    assert exec_call.params == (expected_start,)
    assert exec_call.param_types == (datetime,)
    assert str(expected_start) not in exec_call.sql and "2026" not in exec_call.sql
    assert not any(c.autocommit for c in driver.log.calls)
    assert driver.log.events == ["autocommit=False", "commit", "close"]
    assert len(driver.connections) == 1 and driver.connections[0].closed
    assert result.requested_start == expected_start
    assert (result.refresh_started_at, result.refresh_finished_at) == tuple(CLOCK)
    assert result.utc_offset == UTC_OFFSET
    counts = {t: i + 1 for i, t in enumerate(QUEUE_TABLES)}
    assert result.row_counts == counts
    assert result.fingerprint == {t: from_row(fingerprint_row(t, n)) for t, n in counts.items()}


def test_refresh_rolls_back_when_a_fingerprint_fails() -> None:
    """Proves the transaction's other end: a fingerprint query failing after the refresh rolls
    the refresh back (nothing committed) and closes the connection."""
    failure = odbc_error(pyodbc.OperationalError, "HYT00", 0, "Query timeout expired")
    base = default_responder()

    def respond(sql: str, params: tuple) -> Outcome:
        return [failure] if sql == client_mod.fingerprint_query("Payments") else base(sql, params)

    driver = RecordingDriver(respond)
    with pytest.raises(TransientSourceError, match=r"fingerprint queue\.Payments"):
        client(driver).refresh(datetime(2026, 1, 4))
    assert driver.log.events == ["autocommit=False", "rollback", "close"]


def test_refresh_without_start_uses_the_vendor_default_call() -> None:
    """Proves that `refresh(None)` (the vendor's "since the previous call", never used by the
    flow, W1) sends EXEC without a parameter."""
    driver = RecordingDriver()
    result = client(driver).refresh(None)
    assert driver.log.calls[1].sql == "SET NOCOUNT ON; EXEC queue.Refresh"
    assert driver.log.calls[1].params == ()
    assert result.requested_start is None


@pytest.mark.parametrize(
    ("micro", "expected_ms"),
    [
        (0, 0), (999, 0), (1000, 0), (2000, 0), (3000, 3), (3999, 3), (5000, 3), (6999, 3),
        (7000, 7), (9999, 7), (10000, 10), (123456, 123), (125000, 123), (998000, 997),
        (999999, 997),
    ],
)  # fmt: skip
def test_start_is_floored_to_a_value_sql_server_datetime_holds_exactly(
    micro: int, expected_ms: int
) -> None:
    """Proves the start's truncation: to the millisecond, then down (never up: a later start
    could skip a change) to the 1/300 s grid of `datetime` (.000/.003/.007), so converting it
    to `datetime` on the server changes nothing. Cannot prove the server's rounding itself (the
    live test compares CONVERT(datetime, ?) with the bound value)."""
    value = datetime(2026, 1, 4, 23, 59, 59, micro)
    floored = to_sql_datetime(value)
    assert floored == value.replace(microsecond=expected_ms * 1000)
    assert floored <= value and value - floored < timedelta(milliseconds=4)
    assert (floored.microsecond // 1000) % 10 in (0, 3, 7)


def test_refresh_rejects_an_aware_start_before_connecting() -> None:
    """Proves the source-clock contract: times are naive; nothing is sent for an aware one."""
    from datetime import UTC

    driver = RecordingDriver()
    with pytest.raises(SourceError, match="naive"):
        client(driver).refresh(datetime(2026, 1, 4, tzinfo=UTC))
    assert driver.connections == []


def test_refresh_drains_every_result_and_surfaces_an_error_after_row_counts() -> None:
    """Proves result draining: an EXEC whose first three results are row counts and whose
    fourth is an error (what a procedure that fails half-way sends when NOCOUNT is not honoured)
    fails the refresh with that error, as a permanent SourceError naming queue.Refresh; and
    that the finish clock is not read past the failure. Cannot prove that a real driver
    delivers the error only at nextset() (pyodbc does, pyodbc#69), only that we ask for it."""
    failure = odbc_error(
        pyodbc.ProgrammingError, "42S02", 208, "Invalid object name 'dbo.OrderDetail'."
    )
    driver = RecordingDriver(default_responder(refresh=[5, 7, 11, failure]))
    with pytest.raises(SourceError) as raised:
        client(driver).refresh(datetime(2026, 1, 4))
    assert not isinstance(raised.value, TransientSourceError)
    message = str(raised.value)
    assert "could not run queue.Refresh" in message and "dbo.OrderDetail" in message
    assert "native error 208" in message
    assert driver.log.nextset_calls == 3
    assert client_mod.CLOCKS_SQL not in driver.log.sql()
    assert driver.log.events == ["autocommit=False", "rollback", "close"]
    assert driver.connections[0].closed


def test_refresh_drains_result_sets_too_and_succeeds() -> None:
    """Proves that rows a procedure SELECTs (a result set among the row counts) are skipped by
    nextset() and do not end the draining early."""
    driver = RecordingDriver(default_responder(refresh=[3, [("x",)], 4]))
    client(driver).refresh(datetime(2026, 1, 4))
    assert driver.log.nextset_calls == 3


def test_query_timeout_is_applied_to_every_statement() -> None:
    """Proves the per-statement timeout (pyodbc's `connection.timeout`, set before the cursor
    is made) reaches queue.Refresh and the other statements. Cannot prove the driver enforces
    it (HYT00 on expiry is classified transient, see below)."""
    driver = RecordingDriver()
    client(driver, query_timeout=900).refresh(datetime(2026, 1, 4))
    assert {c.timeout for c in driver.log.calls} == {900}
    driver = RecordingDriver()
    client(driver).refresh(datetime(2026, 1, 4))
    assert {c.timeout for c in driver.log.calls} == {0}  # the connection's own (profile)


def test_source_clock_is_sysdatetime_and_must_be_a_datetime() -> None:
    """Proves source_clock() = SYSDATETIME() (read with SYSUTCDATETIME(), clock()) on the sync
    database, and that a clock
    that comes back as text (FreeTDS below TDS 7.3) fails with the fix, not later."""
    driver = RecordingDriver()
    assert client(driver).source_clock() == CLOCK[0]
    assert driver.log.sql() == ["SELECT SYSDATETIME(), SYSUTCDATETIME()"]
    assert client(RecordingDriver()).clock().utc_offset == UTC_OFFSET

    def as_text(sql: str, params: tuple) -> Outcome:
        return [[("2026-01-05 10:00:00.1234567", "2026-01-05 09:00:00.1234567")]]

    with pytest.raises(SourceError, match=r"TDS_Version 7\.4"):
        client(RecordingDriver(as_text)).source_clock()


def test_connect_seam_defaults_to_the_sync_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves the co-located topology: without a `connect`, the client connects through
    sqlserver.connect to the database it was given, not the target's."""
    seen: list[dict] = []

    def fake_connect(target: Target, **kwargs: Any) -> RecordingConnection:
        seen.append(kwargs)
        return RecordingDriver().open()

    monkeypatch.setattr(mssql, "connect", fake_connect)
    target = sqlserver_target()
    assert SqlServerSourceClient(target).database == "exigo_warehouse"
    SqlServerSourceClient(target, database="ExigoSync").source_clock()
    assert seen == [{"database": "ExigoSync"}]


# --- query(): streaming a table ---------------------------------------------------------------


def test_query_yields_an_executed_cursor_with_arraysize_and_closes() -> None:
    """Proves query(): one SELECT with `?` parameters passed as one sequence, the cursor's
    arraysize set for fetchmany(), cursor and connection closed on exit, and a driver error
    raised while the caller fetches mapped to a SourceError."""
    rows = [(i, f"name {i}") for i in range(12)]
    driver = RecordingDriver(default_responder(rows=rows))
    c = client(driver)
    with c.query("SELECT * FROM queue.[Customers] WHERE CustomerID > ?", [0]) as cur:
        assert cur.arraysize == client_mod.ARRAYSIZE == 5000
        assert cur.fetchmany(5) == rows[:5]
        assert cur.fetchall() == rows[5:]
    call = driver.log.calls[0]
    assert call.params == (0,) and call.autocommit
    assert cur.closed and driver.connections[0].closed

    lost = odbc_error(pyodbc.OperationalError, "08S01", 10054, "TCP Provider: reset")
    with pytest.raises(TransientSourceError, match="read the source"), c.query("SELECT 1"):
        raise lost
    with pytest.raises(SourceError, match="read-only"), c.query("DELETE FROM queue.Orders"):
        pass


# --- errors: what the client tells an operator, and what it retries (B5) -------------------


def test_execute_permission_denied_is_named_and_permanent() -> None:
    """Proves the message a DBA can act on for a missing GRANT, and that it is not retried."""
    denied = odbc_error(
        pyodbc.ProgrammingError,
        "42000",
        229,
        "The EXECUTE permission was denied on the object 'Refresh', database 'ExigoSync', "
        "schema 'queue'.",
    )
    driver = RecordingDriver(default_responder(refresh=[denied]))
    with pytest.raises(SourceError) as raised:
        client(driver).refresh(datetime(2026, 1, 4))
    assert type(raised.value) is SourceError
    message = str(raised.value)
    assert message.startswith("EXECUTE permission denied on queue.Refresh in database 'ExigoSync'")
    assert "GRANT EXECUTE ON OBJECT::queue.Refresh" in message
    assert "native error 229; SQLSTATE 42000" in message
    assert "\n" not in message


def test_missing_procedure_is_named() -> None:
    """Proves a wrong sync database (no queue.Refresh) says so."""
    missing = odbc_error(
        pyodbc.ProgrammingError, "42000", 2812, "Could not find stored procedure 'queue.Refresh'."
    )
    with pytest.raises(SourceError, match="not found in database 'ExigoSync'"):
        client(RecordingDriver(default_responder(refresh=[missing]))).refresh(datetime(2026, 1, 4))


@pytest.mark.parametrize("number", [1205, 40613, 10054])
def test_transient_refresh_error_becomes_transient_source_error(number: int) -> None:
    """Proves the B5 mapping of the client: a deadlock / Azure failover / reset connection
    during EXEC becomes TransientSourceError (the flow retries only that type)."""
    exc = odbc_error(pyodbc.OperationalError, "40001", number, "try again")
    with pytest.raises(TransientSourceError, match=r"could not run queue\.Refresh"):
        client(RecordingDriver(default_responder(refresh=[exc]))).refresh(datetime(2026, 1, 4))


def test_secret_in_a_driver_message_never_reaches_the_error() -> None:
    """Proves S1 for every message the client builds: a driver message that quotes the
    password (as a misconfigured login or a hostile driver might) is scrubbed, and the
    exception chain does not carry the raw driver message either."""
    leaky = odbc_error(
        pyodbc.InterfaceError, "28000", 18456, f"Login failed for user 'x' with '{PASSWORD}'."
    )

    def failing() -> RecordingConnection:
        raise leaky

    c = SqlServerSourceClient(sqlserver_target(), database="ExigoSync", connect=failing)
    for call in (c.source_clock, lambda: c.refresh(datetime(2026, 1, 4))):
        with pytest.raises(SourceError) as raised:
            call()
        assert PASSWORD not in str(raised.value) and "***" in str(raised.value)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__


# --- the real drivers, through the client's default connect --------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_freetds_connection_refused_is_transient_and_secret_free() -> None:
    """Real pyodbc + FreeTDS (tdsodbc) against a closed local port: proves the default connect
    path loads the real driver, and that an unreachable server becomes a TransientSourceError
    (B5 retries it) naming the server, without the password. Cannot prove a login works."""
    import pyodbc as real

    if "FreeTDS" not in real.drivers():
        pytest.skip("FreeTDS ODBC driver (tdsodbc) not installed")
    target = sqlserver_target(
        driver="FreeTDS", server="127.0.0.1", port=_closed_port(), retries=0, login_timeout=2
    )
    with pytest.raises(TransientSourceError) as raised:
        SqlServerSourceClient(target, database="ExigoSync").source_clock()
    message = str(raised.value)
    assert "127.0.0.1" in message and "ExigoSync" in message and "08S01" in message
    assert PASSWORD not in message


def test_mssql_python_connection_refused_is_transient_and_secret_free() -> None:
    """Real mssql-python (its bundled ODBC Driver 18, loaded without unixODBC) against a
    closed local port: proves the `backend: mssql-python` path imports and loads the driver on
    this machine and maps the failure to a TransientSourceError without the password. Cannot
    prove a login works, nor that it loads where libltdl7 / libkrb5-3 / libgssapi-krb5-2 are
    missing (it does not: "Failed to load the driver", checked by hand)."""
    pytest.importorskip("mssql_python")
    target = sqlserver_target(
        backend="mssql-python", server="127.0.0.1", port=_closed_port(), retries=0,
        login_timeout=1, trust_cert=True,
    )  # fmt: skip
    with pytest.raises(TransientSourceError) as raised:
        SqlServerSourceClient(target, database="ExigoSync").source_clock()
    message = str(raised.value)
    assert "127.0.0.1" in message and "08001" in message
    assert PASSWORD not in message


# --- T-SQL syntax of everything the client sends ---------------------------------------------


def test_client_tsql_parses() -> None:
    """Proves every statement the client emits parses as T-SQL (sqlglot, no Command fallback):
    the refresh batch statement by statement, the clocks, the fingerprints. Cannot prove the server
    accepts them (a parser is laxer than SQL Server); the live test runs them."""
    from sqlglot import exp

    batch = [parse_tsql(part) for part in client_mod.REFRESH_SQL.split(";")]
    assert [type(t) for t in batch] == [exp.Set, exp.Declare, exp.Execute]
    declared = batch[1].find(exp.DataType)
    assert declared is not None and declared.this == exp.DataType.Type.DATETIME
    assert "@start" in batch[2].sql("tsql") and "queue.Refresh" in batch[2].sql("tsql")
    assert isinstance(parse_tsql(client_mod.REFRESH_DEFAULT_SQL.split(";")[1]), exp.Execute)
    assert isinstance(parse_tsql(client_mod.CLOCK_SQL), exp.Select)
    assert isinstance(parse_tsql(client_mod.CLOCKS_SQL), exp.Select)
    for table in QUEUE_TABLES:
        tree = parse_tsql(client_mod.fingerprint_query(table))
        assert tree.find(exp.Table).name == table and tree.find(exp.Table).db == "queue"


# --- B5 through the flow's own refresh task ----------------------------------------------------


class RecordingTopology(Topology):
    """A topology whose source client is the SQL Server client over a recording double: the
    seam the flow's refresh task uses (`topology.source_client()`). The double hangs on a
    per-test subclass, so it survives Prefect copying the (dataclass) parameter."""

    driver: Any = None

    def source_client(self) -> SqlServerSourceClient:  # type: ignore[override]
        return SqlServerSourceClient(self.source, database="ExigoSync", connect=self.driver.open)


@pytest.mark.parametrize(
    ("error", "attempts", "kind"),
    [
        (odbc_error(pyodbc.OperationalError, "40001", 1205, "deadlock victim"), 3,
         TransientSourceError),
        (odbc_error(pyodbc.ProgrammingError, "42000", 229, "EXECUTE permission denied"), 1,
         SourceError),
    ],
)  # fmt: skip
def test_b5_flow_refresh_task_retries_only_transient_sqlserver_errors(
    prefect_api: Any, error: BaseException, attempts: int, kind: type
) -> None:
    """B5 through the flow's own `refresh queue` task and its retry condition (loaded from
    exigo_sync.flow, retries configured as the flow does): a deadlock (1205) is
    retried until the retries run out; a permission error (229) fails at once. Proves the
    client's mapping feeds the flow's retry policy; cannot prove the ledger side (the flow
    tests do that on DuckDB)."""
    from prefect import flow

    from exigo_sync.flow import refresh_queue

    driver = RecordingDriver(default_responder(refresh=[error]))
    topology_type = type("RecordingTopology", (RecordingTopology,), {"driver": driver})
    target = sqlserver_target()
    topology = topology_type(target, target, "colocated", "ExigoSync")

    @flow
    def b5() -> Any:
        task = refresh_queue.with_options(retries=2, retry_delay_seconds=[0, 0])
        return task(topology, 1, datetime(2026, 1, 4))

    state = b5(return_state=True)
    assert state.is_failed()
    with pytest.raises(kind) as raised:
        state.result()
    assert type(raised.value) is kind
    execs = [c for c in driver.log.calls if "queue.Refresh" in c.sql]
    assert len(execs) == attempts
    assert PASSWORD not in str(raised.value)
