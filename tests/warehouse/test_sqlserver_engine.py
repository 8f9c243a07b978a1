"""The SQL Server warehouse connection (the `WarehouseConnection` the ledger and the lock use),
short of a live server.

It is driven through `open_sqlserver`'s `connect` seam with the recording DB-API double of
tests/sqlserver/doubles.py: every SQL text, parameter, autocommit state, commit and
rollback is recorded, and pyodbc-shaped errors are raised on demand. What a double cannot prove:
SQL Server's locking and transaction semantics (the live tests in tests/sqlserver/ run the
ledger and race the lock where a server is configured).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyodbc
import pytest

from exigo_sync.profiles import ProfileError
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.connection import WarehouseBusy, WarehouseError
from exigo_sync.warehouse.ledger import Ledger
from exigo_sync.warehouse.sqlserver_engine import SqlServerWarehouse, open_sqlserver
from tests.sqlserver.doubles import (
    FREETDS,
    MSODBC18,
    Outcome,
    RecordingConnection,
    RecordingDriver,
    odbc_error,
)
from tests.sqlserver.targets import PASSWORD, sqlserver_target
from tests.sqlserver.tsql import parse_tsql

NOW = datetime(2026, 1, 5, 10, 0, 0, 123456)


def recorded_warehouse(
    respond: Any = None, driver: str = MSODBC18
) -> tuple[SqlServerWarehouse, RecordingDriver]:
    recording = RecordingDriver(respond or (lambda sql, params: [[(1, "a")]]), driver=driver)
    return open_sqlserver(sqlserver_target(), connect=recording.open), recording


def test_execute_binds_parameters_as_one_sequence_and_returns_tuples() -> None:
    """Proves execute(): `?` parameters go to the driver as one sequence, values and types
    unchanged (a datetime stays a datetime), autocommit is on, rows come back as tuples through
    fetchone()/fetchall(), rowcount is kept, the cursor is drained and closed."""

    def respond(sql: str, params: tuple) -> Outcome:
        return [[(7, "x"), (8, "y")]] if sql.startswith("SELECT") else [1]

    con, driver = recorded_warehouse(respond)
    res = con.execute(q.GET_LOCK, ["exigo-sync-lock"])
    assert res.fetchone() == (7, "x") and res.fetchall() == [(8, "y")]
    assert res.fetchone() is None
    upd = con.execute(q.HEARTBEAT_LOCK, [NOW, "exigo-sync-lock", "token"])
    assert upd.rowcount == 1 and upd.fetchall() == []
    calls = driver.log.calls
    assert [c.params for c in calls] == [("exigo-sync-lock",), (NOW, "exigo-sync-lock", "token")]
    assert calls[1].param_types == (datetime, str, str)
    assert all(c.autocommit for c in calls)
    assert driver.log.nextset_calls == 2  # each statement drained to the end
    con.close()
    assert driver.connections[0].closed


def test_execute_without_parameters_sends_none() -> None:
    """Proves a parameterless statement is executed without a parameter list (pyodbc and
    mssql-python both accept that; an empty list is not passed)."""
    con, driver = recorded_warehouse(lambda sql, params: [])
    con.execute("SET XACT_ABORT ON")
    assert driver.log.calls[0].params == ()


def test_session_setting_parses_as_tsql() -> None:
    """Proves the one statement the connection itself sends (dbt-sqlserver's session default)
    parses as T-SQL; the ledger's statements are checked in tests/warehouse/test_ledger_sql.py.
    Cannot prove the server accepts it (the live test connects through it)."""
    from sqlglot import exp

    assert isinstance(parse_tsql("SET XACT_ABORT ON"), exp.Set)


def test_execute_surfaces_an_error_after_a_first_result() -> None:
    """Proves draining: an error that follows a first result (as in a multi-statement batch)
    is raised by execute(), not left on the connection for the next statement."""
    failure = odbc_error(pyodbc.IntegrityError, "23000", 2627, "Violation of PRIMARY KEY.")
    con, _ = recorded_warehouse(lambda sql, params: [3, failure])
    with pytest.raises(WarehouseError, match="duplicate key"):
        con.execute(q.INSERT_LOCK, ["L", "t", None, "h", 1, "marker", NOW, NOW])


def test_ledger_ddl_and_abandon_run_through_the_engine() -> None:
    """Proves the ledger's own functions work on this engine: the T-SQL DDL is sent statement
    by statement as ddl('sqlserver') gives it, an older lock table gets its missing columns
    (ALTER TABLE ... ADD, T-SQL's form), and abandon_in_flight reads a count with fetchone()
    and updates with bound parameters."""

    # Every table as first shipped: none of the columns added since.
    def respond(sql: str, params: tuple) -> Outcome:
        if sql == q.LEDGER_COLUMNS:
            return [[("batches", "batch_id"), ("run_lock", "lock_name")]]
        return [[(2,)]] if sql == q.COUNT_IN_FLIGHT else []

    con, driver = recorded_warehouse(respond)
    led = Ledger(con)
    led.ensure_schema()
    sent = [s for s in driver.log.sql() if s != q.LEDGER_COLUMNS]
    assert sent[: len(q.ddl("sqlserver"))] == q.ddl("sqlserver")
    added = [s for s in sent if s.startswith("ALTER TABLE")]
    assert added == [
        q.add_column("sqlserver", table, c)
        for table, columns in q.ADDED_COLUMNS.items()
        for c, _ in columns
    ]
    assert all(" ADD " in s and "ADD COLUMN" not in s for s in added)
    assert led.abandon_in_flight("abandoned: test") == 2
    abandon = driver.log.calls[-1]
    assert abandon.sql == q.ABANDON_IN_FLIGHT and abandon.params[0] == "abandoned: test"


def test_transaction_commits_all_statements_with_autocommit_off() -> None:
    """Proves transaction(): autocommit off for the statements inside, one commit at the end,
    autocommit back on afterwards (what mark_merged relies on, L2)."""
    con, driver = recorded_warehouse(lambda sql, params: [1])
    with con.transaction():
        con.execute(q.DELETE_STATS, [4])
        con.execute(q.MARK_MERGED, ["inv", NOW, 4])
    con.execute(q.HEARTBEAT_LOCK, [NOW, "L", "t"])
    assert [c.autocommit for c in driver.log.calls] == [False, False, True]
    assert driver.log.events == ["autocommit=False", "commit", "autocommit=True"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_transaction_rolls_back_on_any_exception(error: BaseException) -> None:
    """Proves all-or-nothing: any exception inside (a failed statement, a bug, Ctrl-C) rolls
    back, is re-raised unchanged, and autocommit is restored."""
    con, driver = recorded_warehouse(lambda sql, params: [1])
    with pytest.raises(type(error)), con.transaction():
        con.execute(q.DELETE_STATS, [4])
        raise error
    assert driver.log.events == ["autocommit=False", "rollback", "autocommit=True"]


def test_transaction_rolls_back_when_a_statement_fails_and_when_commit_fails() -> None:
    """Proves a failing statement inside the transaction (mapped to WarehouseError) and a
    failing COMMIT both end in a rollback; and that transactions do not nest."""
    denied = odbc_error(pyodbc.ProgrammingError, "42000", 229, "The INSERT permission was denied")
    con, driver = recorded_warehouse(lambda sql, params: [denied] if "INSERT" in sql else [1])
    with pytest.raises(WarehouseError, match="permission denied"), con.transaction():
        con.execute(q.DELETE_STATS, [4])
        con.execute(q.INSERT_STATS, [4, "orders", 1, 2, 3, 4, 5, 0, None, None, None])
    assert driver.log.events == ["autocommit=False", "rollback", "autocommit=True"]

    con, driver = recorded_warehouse(lambda sql, params: [1])
    lost = odbc_error(pyodbc.OperationalError, "08S01", 10054, "TCP Provider: reset")

    def failing_commit() -> None:
        raise lost

    driver_con = driver.connections[0]
    driver_con.commit = failing_commit  # type: ignore[method-assign]
    with pytest.raises(WarehouseBusy, match="run COMMIT"), con.transaction():
        con.execute(q.DELETE_STATS, [4])
    assert driver.log.events == ["autocommit=False", "rollback", "autocommit=True"]

    with pytest.raises(WarehouseError, match="nested"), con.transaction(), con.transaction():
        pass


@pytest.mark.parametrize(
    ("number", "sqlstate", "kind"),
    [(1205, "40001", WarehouseBusy), (1222, "HY000", WarehouseBusy),
     (10054, "08S01", WarehouseBusy), (40613, "42000", WarehouseBusy),
     (229, "42000", WarehouseError), (262, "42000", WarehouseError),
     (208, "42S02", WarehouseError)],
)  # fmt: skip
def test_driver_errors_are_mapped_busy_or_permanent(
    number: int, sqlstate: str, kind: type[WarehouseError]
) -> None:
    """Proves the error mapping: deadlock, lock timeout, connection loss and Azure failover are
    WarehouseBusy (transient: the lock loop retries it); permission and missing-object errors
    are WarehouseError; the message names the statement and the server, on one line."""
    exc = odbc_error(pyodbc.OperationalError, sqlstate, number, "server says no")
    con, _ = recorded_warehouse(lambda sql, params: [exc])
    with pytest.raises(WarehouseError) as raised:
        con.execute(q.RELEASE_LOCK, ["L", "t"])
    assert type(raised.value) is kind
    message = str(raised.value)
    assert "run DELETE FROM exigo_sync.run_lock WHERE lock_name = ?" in message
    assert "sql.example.internal,1433/exigo_warehouse" in message
    assert f"native error {number}" in message and "\n" not in message


def test_open_maps_connection_failures_and_keeps_config_errors() -> None:
    """Proves open_sqlserver(): an unreachable server is WarehouseBusy, a login failure a
    WarehouseError, both secret-free with no exception chain; a profile problem stays a
    ProfileError."""
    from exigo_sync.sqlserver import SqlServerConfigError

    target = sqlserver_target()
    for exc, kind in [
        (odbc_error(pyodbc.OperationalError, "08001", 10060, "timeout"), WarehouseBusy),
        (odbc_error(pyodbc.InterfaceError, "28000", 18456, f"Login failed '{PASSWORD}'"),
         WarehouseError),
    ]:  # fmt: skip

        def failing(exc: BaseException = exc) -> Any:
            raise exc

        with pytest.raises(WarehouseError) as raised:
            open_sqlserver(target, connect=failing)
        assert type(raised.value) is kind
        assert "could not connect to the warehouse" in str(raised.value)
        assert PASSWORD not in str(raised.value)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__

    def misconfigured() -> Any:
        raise SqlServerConfigError("dbt target 'sqlserver': no driver")

    with pytest.raises(ProfileError, match="no driver"):
        open_sqlserver(target, connect=misconfigured)


def test_default_connect_goes_through_dbt_sqlserver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves that without a seam the engine opens its connection with
    sqlserver.connect on the target's own database (the warehouse)."""
    from exigo_sync import sqlserver

    seen: list[Any] = []
    driver = RecordingDriver(lambda sql, params: [])

    def fake(target: Any, **kwargs: Any) -> Any:
        seen.append((target.name, kwargs))
        return driver.open()

    monkeypatch.setattr(sqlserver, "connect", fake)
    open_sqlserver(sqlserver_target()).close()
    assert seen == [("sqlserver", {})]


# --- many rows: each driver the way it takes them ---------------------------------------------

LONG_NOTE = "Zoë 李 🦄🚀 " * 3000  # an nvarchar(max) value: 30,000 characters, emoji included
TYPES = ["int", "nvarchar(50)", "nvarchar(max)", "varbinary(50)", "datetime", "money"]


def _rows(n: int) -> list[tuple]:
    return [
        (i, f"name {i}", LONG_NOTE if i == 7 else None, None if i % 2 else b"\x00\x01", NOW, None)
        for i in range(n)
    ]


def _received(driver: RecordingDriver) -> list[tuple]:
    """The rows as the server would receive them, from every INSERT the double saw."""
    out: list[tuple] = []
    for call in driver.log.calls:
        for params in call.rows or [call.params]:
            out += [tuple(params[i : i + len(TYPES)]) for i in range(0, len(params), len(TYPES))]
    return out


def test_insert_rows_uses_parameter_arrays_with_microsofts_driver() -> None:
    """ODBC Driver 18 (named by SQLGetInfo(SQL_DRIVER_NAME)): one executemany with pyodbc's
    fast_executemany, the rows unchanged (the 30,000-character nvarchar(max) value with emoji
    intact), the cursor closed."""
    con, driver = recorded_warehouse(lambda sql, params: [1])
    rows = _rows(5000)
    con.insert_rows('exigo_landing."Customers__incoming"', TYPES, rows)
    (call,) = driver.log.calls
    assert call.sql == 'INSERT INTO exigo_landing."Customers__incoming" VALUES (?, ?, ?, ?, ?, ?)'
    assert call.fast_executemany and call.rows == rows
    assert _received(driver)[7][2] == LONG_NOTE


def test_insert_rows_with_freetds_sends_multi_row_values_and_never_arrays() -> None:
    """FreeTDS (whose parameter arrays crash the process; the double raises DriverCrash if they
    are used): multi-row INSERT ... VALUES statements of at most 2,099 parameters and 1,000 rows,
    every row sent once, in order, values unchanged (the long emoji value intact), binary and
    (max) columns typed for FreeTDS, nothing else."""
    con, driver = recorded_warehouse(lambda sql, params: [1], driver=FREETDS)
    rows = _rows(5000)
    con.insert_rows('exigo_landing."Customers__incoming"', TYPES, rows)
    calls = driver.log.calls
    assert not any(c.fast_executemany or c.rows for c in calls)
    per = 2099 // len(TYPES)
    assert [len(c.params) // len(TYPES) for c in calls] == [per] * (5000 // per) + [5000 % per]
    assert all(len(c.params) <= 2099 for c in calls)
    assert calls[0].sql.startswith(
        'INSERT INTO exigo_landing."Customers__incoming" VALUES (?, ?, ?, ?, ?, ?), (?, '
    )
    assert _received(driver) == rows
    sizes = calls[0].input_sizes
    assert sizes[: len(TYPES)] == [
        None, (pyodbc.SQL_WVARCHAR, 50, 0), (pyodbc.SQL_WLONGVARCHAR, 0, 0),
        (pyodbc.SQL_VARBINARY, 50, 0), None, None,
    ]  # fmt: skip
    assert len(sizes) == len(calls[0].params)

    few, _ = recorded_warehouse(lambda sql, params: [1], driver=FREETDS)
    few.insert_rows("t", ["int"] * 3000, [])  # nothing to send: nothing sent
    wide, wide_driver = recorded_warehouse(lambda sql, params: [1], driver=FREETDS)
    wide.insert_rows("t", ["int"] * 1500, [tuple(range(1500))] * 3)
    assert [len(c.params) for c in wide_driver.log.calls] == [1500] * 3


def test_insert_rows_with_mssql_python_uses_its_own_arrays() -> None:
    """mssql-python (Microsoft's driver, bundled): its executemany binds column-wise arrays
    itself; no pyodbc attribute is set."""
    driver = RecordingDriver(lambda sql, params: [1])
    mssql_python_con = type(
        "Connection", (RecordingConnection,), {"__module__": "mssql_python.connection"}
    )(driver.log, driver.respond, 0)
    con = SqlServerWarehouse(mssql_python_con, sqlserver_target(backend="mssql-python"))
    rows = _rows(10)
    con.insert_rows("t", TYPES, rows)
    (call,) = driver.log.calls
    assert call.rows == rows and not call.fast_executemany


def test_insert_rows_maps_driver_errors() -> None:
    """A failing insert is a WarehouseError naming the table, as any other statement."""
    denied = odbc_error(pyodbc.ProgrammingError, "42000", 229, "The INSERT permission was denied")
    for driver in (MSODBC18, FREETDS):
        con, _ = recorded_warehouse(lambda sql, params, e=denied: [e], driver=driver)
        with pytest.raises(WarehouseError, match=r'run INSERT INTO exigo_landing\."X"'):
            con.insert_rows('exigo_landing."X"', TYPES, _rows(3))


def test_a_connection_whose_rollback_fails_is_closed_and_refused() -> None:
    """When the rollback after a failure fails too (seen live: FreeTDS on Babelfish, after the
    server ended the transaction under XACT_ABORT without the driver knowing, 'ROLLBACK can only
    be used in transaction blocks'; anywhere: a lost connection), the transaction state is
    unknown and a later statement could run outside any transaction: the connection is closed,
    the first error is the one raised, and every later use fails naming why."""
    duplicate = odbc_error(pyodbc.IntegrityError, "23000", 2627, "Violation of PRIMARY KEY.")
    con, driver = recorded_warehouse(lambda sql, params: [duplicate] if "INSERT" in sql else [1])
    no_transaction = odbc_error(
        pyodbc.ProgrammingError, "25000", 3903, "ROLLBACK can only be used in transaction blocks",
        "SQLEndTran",
    )  # fmt: skip

    def failing_rollback() -> None:
        raise no_transaction

    driver.connections[0].rollback = failing_rollback  # type: ignore[method-assign]
    with pytest.raises(WarehouseError, match="duplicate key"), con.transaction():
        con.execute(q.INSERT_STATS, [4, "orders", 1, 2, 3, 4, 5, 0, None, None, None])
    assert driver.connections[0].closed
    assert "autocommit=True" not in driver.log.events[1:]
    for use in (lambda: con.execute(q.GET_LOCK, ["L"]), lambda: con.transaction().__enter__()):
        with pytest.raises(WarehouseError) as raised:
            use()
        message = str(raised.value)
        assert "could not roll back the failed transaction" in message
        assert "native error 3903" in message and "the connection was closed" in message
