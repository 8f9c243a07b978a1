"""The SQL Server sandbox against the real server (`make sqlserver-up`, then `make
test-sqlserver`). The sandbox's own databases and logins are checked only where the sandbox is
configured (EXIGO_SYNC_TEST_MSSQL_SERVER and the three EXIGO_SYNC_SANDBOX_*_PASSWORD variables);
the scratch copies of its sync database need only a login that may create databases
(tests/sqlserver/targets.py `admin_login`: the sandbox's sa under `make test-sqlserver`).

What only a live server proves, and these tests check: the generated scripts ran (the dbo tables
carry the catalogue's columns, types and nullability as SQL Server reports them); queue.Refresh
keeps the vendor semantics on SQL Server (first call 24 h, resume from the previous call, explicit
start, order lines with their order); a login holding only EXECUTE can run it (EXECUTE AS OWNER);
each login can do what it needs and nothing it should not; the loader's batches are accepted by
pyodbc + the driver and a later load applies the simulator's changes.

The refresh semantics and the loader run in a scratch copy of the sync database (created from
01/02_*.sql, dropped afterwards: tests/sqlserver/scratch.py, which says what it adapts on
Babelfish), so the sandbox's own ExigoSync data is never touched. The
rights checks call ExigoSync's queue.Refresh once with a start in the future (empty queue tables,
as harmless to exigo-sync as any other consumer's call: it always passes its own start) and put
the shared "previous call" back afterwards.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.sqlserver import generate_sql as gen
from deploy.sqlserver import load_simulator as loader
from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator.core import SyncSimulator
from exigo_sync.simulator.rates import ActivityRates
from tests.sqlserver import scratch
from tests.sqlserver.batches import run_batch
from tests.sqlserver.targets import admin_login, live_server_is_babelfish, live_skip_reason

pytestmark = pytest.mark.sqlserver

NEEDED = (
    "EXIGO_SYNC_TEST_MSSQL_SERVER",
    "EXIGO_SYNC_SANDBOX_SA_PASSWORD",
    "EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD",
    "EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD",
)
PASSWORD_OF = {
    "sa": "EXIGO_SYNC_SANDBOX_SA_PASSWORD",
    gen.SOURCE_LOGIN: "EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD",
    gen.WAREHOUSE_LOGIN: "EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD",
}


@pytest.fixture(scope="module")
def sandbox() -> None:
    """The sandbox itself (ExigoSync, ExigoWarehouse, the two exigo-sync logins, sa)."""
    if live_skip_reason() is None and live_server_is_babelfish():
        pytest.skip(
            "Babelfish gap: the sandbox itself cannot be set up on Babelfish for PostgreSQL "
            "(04_logins.sql's DDL trigger ON DATABASE, database-level GRANT CREATE TABLE / VIEW "
            "/ SCHEMA and CREATE LOGIN ... CHECK_POLICY; 02's WITH EXECUTE AS OWNER): its logins' "
            "rights are checked against the sandbox's SQL Server only"
        )
    missing = [n for n in NEEDED if not os.environ.get(n)]
    if missing:
        pytest.skip(f"no SQL Server sandbox configured (set {', '.join(missing)})")


def settings(user: str, database: str) -> loader.ConnectionSettings:
    env = {**os.environ, "EXIGO_SYNC_TEST_MSSQL_USER": user}
    env["EXIGO_SYNC_TEST_MSSQL_PASSWORD"] = os.environ[PASSWORD_OF[user]]
    return loader.ConnectionSettings.from_env(env, database=database)


def connect(user: str, database: str) -> Any:
    import pyodbc

    return pyodbc.connect(settings(user, database).connection_string(), autocommit=True)


def denied(con: Any, sql: str) -> bool:
    import pyodbc

    try:
        run_batch(con, sql)
    except pyodbc.Error:
        return True
    return False


@pytest.fixture(scope="module")
def scratch_sync() -> Iterator[str]:
    """A throw-away sync database built from 01 + 02 (names replaced), dropped at the end."""
    if reason := live_skip_reason():
        pytest.skip(reason)
    if admin_login() is None:
        pytest.skip(scratch.ADMIN_SKIP_REASON)
    with scratch.scratch_databases(sync=("ExigoSyncTest",)) as names:
        yield names["ExigoSyncTest"]


def admin(database: str) -> Any:
    return scratch.admin_connect(database)


# --- the scripts ran -----------------------------------------------------------------------------


def test_live_sync_database_columns_match_the_catalogue(sandbox):
    con = connect(gen.SOURCE_LOGIN, gen.SYNC_DATABASE)
    try:
        for table in REPLICATED_TABLES.values():
            rows = run_batch(
                con,
                "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE "
                "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'dbo' AND TABLE_NAME = ? "
                "ORDER BY ORDINAL_POSITION",
                table.name,
            )
            got = []
            for name, data_type, length, nullable in rows:
                if length is not None:
                    data_type = f"{data_type}({'max' if length == -1 else length})"
                got.append((name, data_type, nullable == "YES"))
            expected = [(c.name, c.sql_type, c.nullable) for c in table.columns]
            assert got == expected, table.name
    finally:
        con.close()


# --- queue.Refresh semantics on SQL Server (scratch database) ------------------------------------


def _literal_default(sql_type: str, nullable: bool) -> str:
    """A plain literal for a column the semantics test does not care about (no parameters:
    a NULL bound for a varbinary column would need the driver to describe the parameter)."""
    if nullable:
        return "NULL"
    if sql_type == "datetime":
        return "'1900-01-01'"
    if sql_type in ("int", "bit", "money"):
        return "0"
    return "N''"


def insert_customer(con: Any, db: str, customer_id: int, modified_sql: str) -> None:
    columns = REPLICATED_TABLES["Customers"].columns
    values = {c.name: _literal_default(c.sql_type, c.nullable) for c in columns}
    values.update(CustomerID=str(customer_id), CreatedDate=modified_sql, ModifiedDate=modified_sql)
    names = ", ".join(f"[{n}]" for n in values)
    run_batch(
        con, f"INSERT INTO [{db}].[dbo].[Customers] ({names}) VALUES ({', '.join(values.values())})"
    )


def queued_customers(con: Any, db: str) -> set[int]:
    return {r[0] for r in run_batch(con, f"SELECT CustomerID FROM [{db}].[queue].[Customers]")}


def test_live_queue_refresh_vendor_semantics(scratch_sync):
    scratch = scratch_sync
    con = admin(scratch)
    try:
        insert_customer(con, scratch, 1, "DATEADD(HOUR, -25, GETDATE())")
        insert_customer(con, scratch, 2, "DATEADD(HOUR, -23, GETDATE())")
        insert_customer(con, scratch, 3, "DATEADD(MINUTE, -2, GETDATE())")
        # first call ever: the last 24 hours
        run_batch(con, "EXEC [queue].[Refresh]")
        assert queued_customers(con, scratch) == {2, 3}
        # later call without a start: only what changed since the previous call
        insert_customer(con, scratch, 4, "GETDATE()")
        run_batch(con, "EXEC [queue].[Refresh]")
        assert queued_customers(con, scratch) == {4}
        # explicit start (bound as a datetime parameter, as exigo-sync will)
        now = run_batch(con, "SELECT GETDATE()")[0][0]
        run_batch(con, "EXEC [queue].[Refresh] ?", now - timedelta(hours=24, minutes=30))
        assert queued_customers(con, scratch) == {2, 3, 4}
        # ... and the next call resumes from that call's time
        insert_customer(con, scratch, 5, "GETDATE()")
        run_batch(con, "EXEC [queue].[Refresh]")
        assert queued_customers(con, scratch) == {5}
        state = run_batch(con, "SELECT COUNT(*), MAX(LastRefresh) FROM [queue].[RefreshState]")
        assert state[0][0] == 1 and state[0][1] is not None
    finally:
        con.close()


def test_live_queue_tables_follow_dbo_columns(scratch_sync):
    con = admin(scratch_sync)
    try:
        run_batch(con, "ALTER TABLE [dbo].[CustomerSites] ADD [SandboxExtra] int NULL")
        run_batch(con, "EXEC [queue].[Refresh] '1/1/2017'")
        cols = {
            r[0]
            for r in run_batch(
                con,
                "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
                "WHERE TABLE_SCHEMA = 'queue' AND TABLE_NAME = 'CustomerSites'",
            )
        }
        assert "SandboxExtra" in cols
    finally:
        run_batch(con, "ALTER TABLE [dbo].[CustomerSites] DROP COLUMN [SandboxExtra]")
        con.close()


# --- the loader on SQL Server (scratch database) -------------------------------------------------


def test_live_loader_full_then_changes(scratch_sync, tmp_path: Path):
    """The loader's full load and then its incremental load (the one that failed live with
    'Invalid cursor state', issue #19) through pyodbc and the configured driver: with FreeTDS
    as multi-row INSERTs, with Microsoft's ODBC Driver with fast_executemany."""
    scratch = scratch_sync
    sim_path = tmp_path / "source.duckdb"
    SyncSimulator.create(sim_path, seed=3, customers=40, clock_start=datetime(2026, 1, 5))
    user, password = admin_login()  # type: ignore[misc]
    env = {
        **os.environ,
        "EXIGO_SYNC_TEST_MSSQL_USER": user,
        "EXIGO_SYNC_TEST_MSSQL_PASSWORD": password,
    }
    out, err = io.StringIO(), io.StringIO()
    args = [str(sim_path), "--database", scratch, "--batch-size", "100"]
    assert loader.main(args, env=env, out=out, err=err) == 0, err.getvalue()
    con = admin(scratch)
    try:
        # the newest change lands the margin (5 minutes) before the server's now
        newest, now = run_batch(
            con,
            "SELECT MAX(m), GETDATE() FROM (SELECT ModifiedDate AS m FROM [dbo].[Customers] "
            "UNION ALL SELECT ModifiedDate FROM [dbo].[Orders] "
            "UNION ALL SELECT ModifiedDate FROM [dbo].[Payments]) AS t",
        )[0]
        assert now - timedelta(minutes=6) <= newest <= now - timedelta(minutes=4)
    finally:
        con.close()
    SyncSimulator(sim_path).advance(
        timedelta(minutes=20), ActivityRates(line_removals=30.0, payment_deletes=30.0)
    )
    assert loader.main(args, env=env, out=out, err=err) == 0, err.getvalue()
    assert "changes since" in out.getvalue()
    assert password not in out.getvalue() + err.getvalue()

    sim = loader.SimulatorFile.open(sim_path)
    con = admin(scratch)
    try:
        for table in REPLICATED_TABLES.values():
            keys = ", ".join(f"[{k}]" for k in table.key)
            on_server = {
                tuple(r) for r in run_batch(con, f"SELECT {keys} FROM [dbo].[{table.name}]")
            }
            assert on_server == sim.keys(table), table.name
    finally:
        con.close()


# --- the logins' rights (ExigoSync, ExigoWarehouse) ----------------------------------------------


@pytest.fixture
def saved_refresh_state(sandbox) -> Iterator[None]:
    admin = connect("sa", gen.SYNC_DATABASE)
    (last,) = run_batch(admin, "SELECT LastRefresh FROM [queue].[RefreshState]")[0]
    try:
        yield
    finally:
        run_batch(admin, "UPDATE [queue].[RefreshState] SET LastRefresh = ?", last)
        admin.close()


def test_live_source_login_refreshes_and_reads_only(saved_refresh_state):
    con = connect(gen.SOURCE_LOGIN, gen.SYNC_DATABASE)
    try:
        # EXECUTE alone is enough: the procedure replaces the queue tables as its owner.
        run_batch(
            con, "SET NOCOUNT ON; EXEC [queue].[Refresh] ?", datetime.now() + timedelta(days=1)
        )
        assert run_batch(con, "SELECT COUNT(*) FROM [queue].[Orders]")[0][0] == 0
        assert run_batch(con, "SELECT COUNT(*) FROM [dbo].[OrderStatuses]")[0][0] > 0
        assert denied(con, "INSERT INTO [dbo].[OrderStatuses] VALUES (99, N'x')")
        assert denied(con, "CREATE TABLE [queue].[Mine] (a int)")
        assert denied(con, "DROP TABLE [queue].[Orders]")
        assert denied(con, "SELECT COUNT(*) FROM [sandbox].[LoadState]")
        assert denied(con, "UPDATE [queue].[RefreshState] SET LastRefresh = NULL")
    finally:
        con.close()


@pytest.mark.parametrize("database", [gen.WAREHOUSE_DATABASE, gen.SYNC_DATABASE])
def test_live_warehouse_login_builds_only_in_exigo_schemas(sandbox, database):
    con = connect(gen.WAREHOUSE_LOGIN, database)
    scratch_schema = f"exigo_sync_test_{uuid.uuid4().hex[:8]}"
    try:
        run_batch(con, "CREATE TABLE [exigo_sync].[sandbox_probe] (a int)")
        run_batch(con, "INSERT INTO [exigo_sync].[sandbox_probe] VALUES (1)")
        run_batch(con, "DROP TABLE [exigo_sync].[sandbox_probe]")
        run_batch(con, f"CREATE SCHEMA [{scratch_schema}]")
        run_batch(con, f"CREATE VIEW [{scratch_schema}].[v] AS SELECT 1 AS a")
        run_batch(con, f"DROP VIEW [{scratch_schema}].[v]")
        run_batch(con, f"DROP SCHEMA [{scratch_schema}]")
        assert denied(con, "CREATE SCHEMA [not_exigo_probe]")  # the DDL trigger
        assert denied(con, "CREATE TABLE [dbo].[sandbox_probe] (a int)")
        # dbt's reads of the sync database
        sync = gen.SYNC_DATABASE
        run_batch(con, f"SELECT TOP 1 * FROM [{sync}].[dbo].[Payments]")
        run_batch(con, f"SELECT TOP 1 * FROM [{sync}].[queue].[RefreshState]")
        assert denied(con, f"SELECT COUNT(*) FROM [{sync}].[sandbox].[LoadState]")
        assert denied(con, f"INSERT INTO [{sync}].[dbo].[OrderStatuses] VALUES (98, N'x')")
    finally:
        con.close()
