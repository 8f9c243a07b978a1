"""The landed topology's SQL on SQL Server, short of a server: every statement the landing sends
to a SQL Server warehouse (create, bulk insert, the atomic swap, the manifest) and every query it
sends to a SQL Server source (columns, table streams, reopened rows by key) parses as T-SQL.

A recording connection double (`RecordingWarehouse`) stands in for the warehouse and a recording
source client (`RecordingSource`) for the sync database: what they prove is the SQL text, the
order (everything copied before one swap transaction) and that values travel as parameters. Only
a live server proves that SQL Server accepts it (tests/sqlserver/test_live_flow.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from exigo_sync.catalog import LOOKUP_TABLES, REPLICATED_TABLES
from exigo_sync.policy import SensitivePolicy
from exigo_sync.profiles import Target
from exigo_sync.settings import REPO_ROOT
from exigo_sync.warehouse import landing
from tests.sqlserver.tsql import parse_tsql


class _Result:
    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return self.rows

    def fetchmany(self, n: int) -> list[tuple]:
        out, self.rows = self.rows[:n], self.rows[n:]
        return out


class RecordingWarehouse:
    """A SQL Server warehouse double: records statements, answers the reopen-candidate lookup."""

    engine = "sqlserver"

    def __init__(self) -> None:
        self.log: list[tuple[str, str, Any]] = []  # (kind, sql, params or rows)
        self.in_transaction = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        self.log.append(("tx" if self.in_transaction else "execute", sql, list(params)))
        if "information_schema.tables" in sql:
            return _Result([(1,)])  # the history table exists
        if "FROM exigo_history." in sql:
            return _Result([(7,), (9,)] if "payments" in sql else [])  # deleted, back at source
        return _Result([])

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.log.append(("executemany", sql, rows))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.in_transaction = True
        yield
        self.in_transaction = False

    def close(self) -> None:
        pass


class RecordingSource:
    """A SQL Server source double: information_schema answers from the catalogue."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, list[Any]]] = []

    @contextmanager
    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[_Result]:
        self.queries.append((sql, list(params)))
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
            yield _Result(rows)
        else:  # a table stream: two rows of the selected width
            width = sql.split(" FROM ")[0].count(",") + 1
            yield _Result([(None,) * width] * 2)


def test_landing_statements_parse_as_tsql(monkeypatch) -> None:
    warehouse = RecordingWarehouse()
    monkeypatch.setattr(landing, "connected", _opening(warehouse))
    source = RecordingSource()
    target = Target("wh", "sqlserver", {"database": "ExigoWarehouse"})
    tables = landing.tables_for_batch(["payments"])
    landed = landing.land_batch(
        source, "sqlserver", target, 12, tables, logger=logging.getLogger("test"),
        policy=SensitivePolicy.load(REPO_ROOT / "dbt_project"),
    )  # fmt: skip
    assert set(landed) == {t.label for t in tables}

    # Source side: column reads, whole-table streams, reopened rows by key (bound values).
    reopen = [
        (sql, params) for sql, params in source.queries if 'FROM "dbo"' in sql and " WHERE " in sql
    ]
    assert reopen and reopen[0][1] == [7, 9]
    for sql, _ in source.queries:
        parse_tsql(sql)

    # Warehouse side: every statement parses; rows travel only through executemany; the
    # swap and the manifest are one transaction, after every copy.
    kinds = [kind for kind, _, _ in warehouse.log]
    first_tx = kinds.index("tx")
    assert "executemany" in kinds[:first_tx]  # the copies ...
    assert all(k == "tx" for k in kinds[first_tx:])  # ... all before the one swap transaction
    swapped = [sql for kind, sql, _ in warehouse.log if kind == "tx"]
    assert sum("sp_rename" in s for s in swapped) == len(tables)
    assert any(s.startswith(f"INSERT INTO {landing.MANIFEST}") for s in swapped)
    assert any("FROM exigo_history." in sql for _, sql, _ in warehouse.log)  # reopen lookup
    for _, sql, _ in warehouse.log:
        parse_tsql(sql)


def _opening(con: RecordingWarehouse) -> Any:
    @contextmanager
    def connect(target: Target) -> Iterator[RecordingWarehouse]:
        yield con

    return connect
