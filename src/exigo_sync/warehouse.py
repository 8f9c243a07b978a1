"""Short-lived DB-API connections to the warehouse, for the ledger and the lock.

Connections are opened per operation and closed at once: DuckDB locks its file while a
connection is open, and dbt must be able to open the warehouse between our statements.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from exigo_sync.profiles import ProfileError, Target


class WarehouseBusy(RuntimeError):
    """Another process has the warehouse file open (DuckDB allows one writer process)."""


def dialect(target: Target) -> str:
    return {"duckdb": "duckdb", "sqlserver": "tsql"}.get(target.type, target.type)


@contextmanager
def connect(target: Target) -> Iterator[Any]:
    """Yield a DB-API connection using `?` parameters (DuckDB autocommits each statement)."""
    if target.type != "duckdb":
        # The pyodbc warehouse (T-SQL dialect in ledger_sql) comes with the SQL Server issue.
        raise ProfileError(
            f"dbt target '{target.name}' is {target.type}: the warehouse connection for it is "
            "not implemented yet (only duckdb is)"
        )
    import duckdb

    path = target.warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(f"warehouse file {path} is in use by another process") from None
        raise
    try:
        yield con
    finally:
        con.close()
