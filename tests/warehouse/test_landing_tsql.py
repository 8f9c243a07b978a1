"""The landed topology into a SQL Server warehouse, short of a server: the landing runs its real
code, the SQL Server source client and the SQL Server warehouse engine, over the strict recording
DB-API double of tests/sqlserver/doubles.py on both sides (one for the sync database, one for the
warehouse). So every statement the landing sends passes the driver's own checks (parameter count,
no MARS, no fast_executemany with FreeTDS), and parses as T-SQL: create, rows in, the atomic swap,
the manifest, the fingerprints; at the source, the columns, the table streams and the reopened
rows by key.

What the doubles prove: the SQL text, the order (everything copied before one swap transaction),
that values travel as parameters, the rows path each driver takes (parameter arrays with
Microsoft's ODBC Driver 18; multi-row INSERT ... VALUES with FreeTDS) and that a long nvarchar(max)
value with emoji reaches the driver unchanged on both. Only a live server proves that SQL Server
accepts it and stores it (tests/sqlserver/test_live_connections.py, test_live_flow.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from exigo_sync.catalog import LOOKUP_TABLES, QUEUE_TABLES, REPLICATED_TABLES
from exigo_sync.policy import SensitivePolicy
from exigo_sync.profiles import Target
from exigo_sync.settings import REPO_ROOT
from exigo_sync.source.sqlserver_client import SqlServerSourceClient
from exigo_sync.warehouse import landing
from exigo_sync.warehouse.sqlserver_engine import SqlServerWarehouse, open_sqlserver
from tests.sqlserver.doubles import FREETDS, MSODBC18, Outcome, RecordingDriver, fingerprint_row
from tests.sqlserver.targets import sqlserver_target
from tests.sqlserver.tsql import parse_tsql

LONG_NOTE = "Zoë 李 🦄🚀 " * 3000  # 30,000 characters of nvarchar(max), emoji included
WHEN = datetime(2026, 1, 5, 9, 0, 0)


def _sample(sql_type: str, i: int) -> Any:
    t = sql_type.split("(")[0]
    return {"int": i, "bit": True, "datetime": WHEN, "money": None, "varbinary": None}.get(
        t, f"v{i}"
    )


class Source:
    """The sync database: information_schema from the catalogue; each table stream two rows
    (Customers' Notes: LONG_NOTE)."""

    def __call__(self, sql: str, params: tuple) -> Outcome:
        if "INFORMATION_SCHEMA.COLUMNS" in sql:
            table = params[1]
            catalogue = REPLICATED_TABLES.get(table) or LOOKUP_TABLES[table]
            rows = []
            for c in catalogue.columns:
                base = c.sql_type.split("(")[0]
                length = -1 if "max" in c.sql_type else None
                if base in ("nvarchar", "varchar", "varbinary") and "max" not in c.sql_type:
                    length = int(c.sql_type.split("(")[1].rstrip(")"))
                precision, scale = (19, 4) if base == "money" else (None, None)
                rows.append((c.name, base, length, precision, scale))
            return [rows]
        if sql.startswith("SELECT"):  # a table stream, whole or by key
            table = sql.split(' FROM "dbo".')[-1].split(' FROM "queue".')[-1].split()[0]
            catalogue = REPLICATED_TABLES.get(table.strip('"')) or LOOKUP_TABLES[table.strip('"')]
            selected = sql[len("SELECT ") : sql.index(" FROM ")].split(", ")
            types = {c.name: c.sql_type for c in catalogue.columns}
            return [
                [
                    tuple(
                        LONG_NOTE if name.strip('"') == "Notes" else
                        _sample(types[name.strip('"')], i)
                        for name in selected
                    )
                    for i in (1, 2)
                ]
            ]  # fmt: skip
        raise AssertionError(f"unexpected source statement: {sql}")


class Warehouse:
    """The warehouse: the history table exists, payments 7 and 9 are deleted keys back at the
    source; fingerprints and counts of what was landed (two rows a table)."""

    def __call__(self, sql: str, params: tuple) -> Outcome:
        if "information_schema.tables" in sql:
            return [[(1,)]]
        if "FROM exigo_history." in sql:
            return [[(7,), (9,)] if "payments" in sql else []]
        if sql.startswith("SELECT COUNT(*), SUM("):
            table = sql.split(f"{landing.QUEUE_SCHEMA}.")[1].strip('"')
            return [[fingerprint_row(table, 2)]]
        if sql.startswith("SELECT COUNT(*)"):
            return [[(2,)]]
        if sql.startswith("SELECT"):
            raise AssertionError(f"unexpected warehouse query: {sql}")
        return [] if sql.startswith(("IF ", "CREATE", "EXEC")) else [1]


def _opening(con: SqlServerWarehouse) -> Any:
    @contextmanager
    def connect(target: Target) -> Iterator[SqlServerWarehouse]:
        yield con

    return connect


@pytest.mark.parametrize("driver", [MSODBC18, FREETDS])
def test_landing_into_sqlserver_through_the_strict_driver_double(
    monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    source_driver = RecordingDriver(Source(), driver=driver)
    warehouse_driver = RecordingDriver(Warehouse(), driver=driver)
    target = sqlserver_target()
    warehouse = open_sqlserver(target, connect=warehouse_driver.open)
    monkeypatch.setattr(landing, "connected", _opening(warehouse))
    source = SqlServerSourceClient(target, database="ExigoSync", connect=source_driver.open)
    tables = landing.tables_for_batch(["payments"])
    result = landing.land_batch(
        source, "sqlserver", target, 12, tables, logger=logging.getLogger("test"),
        policy=SensitivePolicy.load(REPO_ROOT / "dbt_project"),
    )  # fmt: skip
    assert set(result.rows) == {t.label for t in tables}
    assert set(result.fingerprint) == set(QUEUE_TABLES)

    # Source side: column reads, whole-table streams, reopened rows by key (bound values).
    queries = source_driver.log.calls
    reopen = [c for c in queries if 'FROM "dbo"' in c.sql and " WHERE " in c.sql]
    assert reopen and reopen[0].params == (7, 9)
    for call in queries:
        parse_tsql(call.sql)

    # Warehouse side: every statement parses; rows travel only through the driver's rows path;
    # the swap and the manifest are one transaction, after every copy.
    calls = warehouse_driver.log.calls
    inserts = [c for c in calls if c.sql.startswith("INSERT INTO") and "__incoming" in c.sql]
    assert inserts
    first_tx = next(i for i, c in enumerate(calls) if not c.autocommit)
    assert all(calls.index(c) < first_tx for c in inserts)  # the copies ...
    swapped = [c.sql for c in calls[first_tx:] if not c.autocommit]
    assert sum("sp_rename" in s for s in swapped) == len(tables)
    assert any(s.startswith(f"INSERT INTO {landing.MANIFEST}") for s in swapped)
    assert warehouse_driver.log.events.count("commit") == 1
    assert any("FROM exigo_history." in c.sql for c in calls)  # reopen lookup
    for call in calls:
        parse_tsql(call.sql)

    # The rows path of the driver in use, and the long emoji value arrived unchanged.
    customers = [c for c in inserts if '"Customers__incoming"' in c.sql]
    notes = REPLICATED_TABLES["Customers"].column_names.index("Notes")
    width = len(REPLICATED_TABLES["Customers"].columns)
    if driver == MSODBC18:
        (call,) = customers
        assert call.fast_executemany and len(call.rows) == 2
        received = call.rows
    else:
        assert not any(c.fast_executemany or c.rows for c in calls)
        (call,) = customers
        assert call.sql.count("(?") == 2  # both rows in one multi-row INSERT
        received = [call.params[:width], call.params[width:]]
    assert [row[notes] for row in received] == [LONG_NOTE, LONG_NOTE]
