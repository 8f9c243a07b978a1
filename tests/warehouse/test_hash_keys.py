"""S2 `hash` on a SQL Server warehouse (exigo_sync.warehouse.hash_keys): the key's pads travel as
bound parameters, are there for dbt's run only, and every statement parses as T-SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from exigo_sync import hash_key
from exigo_sync.profiles import Target
from exigo_sync.warehouse import hash_keys
from tests.sqlserver.tsql import parse_tsql

KEY = "0123456789abcdef0123456789abcdef-test"


class _Recording:
    engine = "sqlserver"

    def __init__(self) -> None:
        self.log: list[tuple[str, list[Any]]] = []

    def execute(self, sql: str, params: Any = ()) -> None:
        self.log.append((sql, list(params)))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield


def test_s2_pads_stored_for_dbt_and_removed_after(monkeypatch: pytest.MonkeyPatch) -> None:
    con = _Recording()

    @contextmanager
    def connected(target: Target) -> Iterator[_Recording]:
        yield con

    monkeypatch.setattr(hash_keys, "connected", connected)
    monkeypatch.setenv(hash_key.VARIABLE, KEY)
    target = Target("wh", "sqlserver", {"database": "ExigoWarehouse"})
    with hash_keys.provided(target, needed=True):
        during = list(con.log)
    ipad, opad = hash_key.pads(KEY.encode())
    assert (hash_keys.INSERT, [hash_keys.KEY_NAME, ipad, opad]) in during
    assert con.log[-1] == (hash_keys.DELETE, [hash_keys.KEY_NAME])
    for sql, _ in con.log:
        assert KEY not in sql and ipad.hex() not in sql.lower()
        parse_tsql(sql)

    con.log.clear()
    with hash_keys.provided(target, needed=False):
        pass
    with hash_keys.provided(Target("wh", "duckdb", {"path": "x.duckdb"}), needed=True):
        pass
    assert con.log == []
