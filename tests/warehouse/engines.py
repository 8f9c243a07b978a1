"""A fresh warehouse on each engine, for the engine-neutral warehouse tests (the `warehouse` fixture
of tests/warehouse/conftest.py).

- DuckDB: an empty warehouse file in the test's tmp dir (it exists, so a read-only open works).
- SQL Server: the live test server of tests/sqlserver/targets.py. The ledger's schema there would
  be shared by every test and every run, so each test gets a schema of its own: every statement of
  `exigo_sync.warehouse.ledger_sql` that names the ledger schema is pointed at
  `exigo_sync_test_<random>` for the test (the module's constants and the `SCHEMA` its DDL
  builders read; the sandbox's warehouse login may create exigo_* schemas), and that schema's
  tables and the schema itself are dropped afterwards. The statements
  are otherwise the ones the flow runs; the real schema name is exercised by the live suite
  (tests/sqlserver/test_live_connections.py).
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from exigo_sync.profiles import Target
from exigo_sync.warehouse import ledger_sql
from tests.sqlserver.targets import live_target

LEDGER_TABLES = ("batch_entity_stats", "run_lock", "batches")


def duckdb_target(root: Path) -> Target:
    """A DuckDB warehouse target whose file is `root/wh.duckdb` (not created)."""
    attach = [{"path": str(root / "src.duckdb"), "alias": "exigo"}]
    return Target("duckdb", "duckdb", {"path": str(root / "wh.duckdb"), "attach": attach})


def fresh_duckdb(root: Path) -> Target:
    """A DuckDB warehouse target over an empty, existing file."""
    target = duckdb_target(root)
    duckdb.connect(str(target.warehouse_path())).close()
    return target


def use_ledger_schema(monkeypatch: pytest.MonkeyPatch, schema: str) -> None:
    """Point every ledger statement at `schema` (undone with the monkeypatch)."""
    prefix = f"{ledger_sql.SCHEMA}."
    for name, value in list(vars(ledger_sql).items()):
        if not (name.isupper() and isinstance(value, str)):
            continue
        if name == "SCHEMA":
            monkeypatch.setattr(ledger_sql, name, schema)
        elif prefix in value:
            monkeypatch.setattr(ledger_sql, name, value.replace(prefix, f"{schema}."))


@contextmanager
def fresh_sqlserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """The live test server with a ledger schema of this test's own, dropped on the way out."""
    target = live_target()
    schema = f"exigo_sync_test_{uuid.uuid4().hex[:8]}"
    use_ledger_schema(monkeypatch, schema)
    try:
        yield target
    finally:
        drop_schema(target, schema, LEDGER_TABLES)


def drop_schema(target: Target, schema: str, tables: Iterable[str]) -> None:
    """Drop `tables` and then `schema` on the live server. Never raises: what cannot be dropped
    is logged and warned about (to drop by hand), so it never masks the test's own outcome."""
    from exigo_sync.warehouse.sqlserver_engine import open_sqlserver

    try:
        con = open_sqlserver(target)
        try:
            for table in tables:
                con.execute(
                    f"IF OBJECT_ID('{schema}.{table}') IS NOT NULL DROP TABLE {schema}.{table}"
                )
            con.execute(f"IF SCHEMA_ID('{schema}') IS NOT NULL EXEC('DROP SCHEMA {schema}')")
        finally:
            con.close()
    except Exception as exc:
        message = f"could not drop the test schema {schema} (drop it by hand): {exc}"
        logging.getLogger(__name__).warning(message)
        warnings.warn(message, stacklevel=2)
