"""The DuckDB warehouse: one file, one writer process at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from exigo_sync.profiles import Target
from exigo_sync.warehouse.connection import WarehouseBusy


class DuckDbWarehouse:
    engine = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.raw = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql, list(params))

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


def open_duckdb(target: Target) -> DuckDbWarehouse:
    path = target.warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return DuckDbWarehouse(duckdb.connect(str(path)))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(f"warehouse file {path} is in use by another process") from None
        raise
