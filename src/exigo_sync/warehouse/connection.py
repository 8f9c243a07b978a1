"""Short-lived connections to the warehouse for the ledger, the lock and the landing.

Connections are opened per operation and closed at once: DuckDB locks its file while a
connection is open, and dbt must be able to open the warehouse between our statements. Each
engine lives in its own module and maps its own driver errors; this module only picks one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from exigo_sync.profiles import ProfileError, Target

ENGINES = ("duckdb", "sqlserver")


class WarehouseError(RuntimeError):
    """The warehouse refused or failed a statement (message is secret-free)."""


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse (DuckDB allows one writer process); worth a retry."""


class WarehouseConnection(Protocol):
    """The DB-API subset the ledger, the lock and the landing use, the same on every engine:
    `?` parameters always passed as one sequence, explicit transactions."""

    engine: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the result has fetchone() / fetchall()."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""
        ...

    def close(self) -> None: ...


def engine(target: Target) -> str:
    """The warehouse engine of a dbt target: one name per engine everywhere (`sqlserver`)."""
    if target.type not in ENGINES:
        raise ProfileError(
            f"dbt target '{target.name}' has type '{target.type}': exigo-sync supports "
            f"{' and '.join(ENGINES)} warehouses"
        )
    return target.type


@contextmanager
def connect(target: Target) -> Iterator[WarehouseConnection]:
    """An autocommitting connection to the target's warehouse, closed on exit."""
    if engine(target) == "duckdb":
        from exigo_sync.warehouse.duckdb_engine import open_duckdb as opener
    else:
        from exigo_sync.warehouse.sqlserver_engine import open_sqlserver as opener
    con = opener(target)
    try:
        yield con
    finally:
        con.close()
