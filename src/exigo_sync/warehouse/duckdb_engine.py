"""The DuckDB warehouse: one file, one writer process at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from exigo_sync.profiles import Target
from exigo_sync.quoting import literal
from exigo_sync.warehouse.errors import WarehouseBusy, WarehouseError


class DuckDbWarehouse:
    engine = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.raw = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql, list(params))

    def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        row = self.raw.execute(sql, list(params)).fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.raw.begin()
        try:
            yield
        except BaseException:
            self.raw.rollback()
            raise
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()


def open_duckdb(target: Target, *, read_only: bool = False) -> DuckDbWarehouse:
    """The warehouse file, created if missing unless `read_only` (then it must exist)."""
    path = target.warehouse_path()
    if read_only and not path.is_file():
        raise WarehouseError(f"no warehouse file at {path}")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(f"warehouse file {path} is in use by another process") from None
        raise
    except duckdb.ConnectionException as exc:
        # This process has the file open already, read-write where we asked read-only or the
        # other way round (a `status` and a batch in one test process): busy for a moment.
        if "different configuration" in str(exc):
            raise WarehouseBusy(f"warehouse file {path} is open in another mode here") from None
        raise
    try:
        _apply_settings(con, target)
    except BaseException:
        con.close()
        raise
    return DuckDbWarehouse(con)


_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _apply_settings(con: duckdb.DuckDBPyConnection, target: Target) -> None:
    """The output's `settings` (the profile's memory_limit, preserve_insertion_order, ...), set
    as dbt-duckdb sets them on dbt's connections: the flow's own work in the warehouse (the
    landing's copy above all) runs under the same bounds as dbt's models."""
    for name, value in (target.config.get("settings") or {}).items():
        if not _SETTING_NAME.fullmatch(str(name)):
            raise WarehouseError(f"dbt target '{target.name}': {name!r} is not a DuckDB setting")
        try:
            con.execute(f"SET {name} = {literal(value)}")
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise WarehouseError(
                f"dbt target '{target.name}': DuckDB refused setting {name} = {value!r} "
                f"({first}); fix `settings` in the profile"
            ) from None
