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
from exigo_sync.warehouse.errors import WarehouseBusy, WarehouseError

__all__ = [
    "ENGINES",
    "WarehouseBusy",
    "WarehouseConnection",
    "WarehouseError",
    "connect",
    "connected",
    "engine",
]

ENGINES = ("duckdb", "sqlserver")


class WarehouseConnection(Protocol):
    """The DB-API subset the ledger, the lock and the landing use, the same on every engine:
    `?` parameters always passed as one sequence, explicit transactions."""

    engine: str

    @property
    def raw(self) -> Any:
        """The driver's own connection (landing streams through it)."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the result has fetchone() / fetchall()."""
        ...

    def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT / UPDATE / DELETE; how many rows it changed."""
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


def connect(target: Target, *, read_only: bool = False) -> WarehouseConnection:
    """An autocommitting connection to the target's warehouse; the caller closes it.

    read_only: DuckDB opens the file read-only (never created, never written; it still cannot be
    opened while another process writes it: WarehouseBusy); SQL Server is unchanged (what a
    read-only caller runs decides what it needs)."""
    if engine(target) == "duckdb":
        from exigo_sync.warehouse.duckdb_engine import open_duckdb

        return open_duckdb(target, read_only=read_only)
    from exigo_sync.warehouse.sqlserver_engine import open_sqlserver

    return open_sqlserver(target)


@contextmanager
def connected(target: Target, *, read_only: bool = False) -> Iterator[WarehouseConnection]:
    """`connect`, closed on exit."""
    con = connect(target, read_only=read_only)
    try:
        yield con
    finally:
        con.close()
