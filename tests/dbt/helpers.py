"""Helpers for the dbt tests: a throw-away dbt invocation environment and a hand-made source file.

Every test gets its own warehouse file, target and log folders; dbt runs in-process through
dbtRunner so results are judged from node results, not from log text.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import yaml
from dbt.cli.main import dbtRunner, dbtRunnerResult

from exigo_sync.catalog import LOOKUP_TABLES, REPLICATED_ENTITIES, REPLICATED_TABLES, duckdb_type
from exigo_sync.dbt_runner import batch_env
from exigo_sync.naming import column_name
from tests import parse_cache

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
PROFILES_EXAMPLE = REPO / "profiles.example.yml"
# The example profile's dbt threads on DuckDB (tests/conftest.py runs the suite at 1).
DBT_THREADS_AS_SHIPPED = {"EXIGO_SYNC_DBT_THREADS": "2"}

# Queue table -> dbt entity, from the catalogue.
ENTITIES = {e.table: e.name for e in REPLICATED_ENTITIES}

FAST_SELECTION = ("--exclude", "tag:exigo_marts", "test_name:not_null", "test_name:unique")

# Vars the tests read back from dbt_project.yml so a test never hard-codes the S2 policy.
_PROJECT_VARS = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
SENSITIVE_POLICY: dict[str, dict[str, str]] = _PROJECT_VARS["exigo_sensitive_columns"]


def mask(value: Any) -> Any:
    if value is None:
        return None
    text = str(value)
    return "****" if len(text) <= 4 else "****" + text[-4:]


def apply_policy(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A source (PascalCase) row as the warehouse should hold it: snake_case, S2 applied."""
    policy = SENSITIVE_POLICY.get(table, {})
    out: dict[str, Any] = {}
    for name, value in row.items():
        treatment = policy.get(name, "keep")
        if treatment == "drop":
            continue
        if treatment == "mask":
            value = mask(value)
        elif treatment == "hash":
            raise NotImplementedError("no column uses 'hash' in the default policy")
        out[column_name(name)] = value
    return out


def key_columns(table: str) -> tuple[str, ...]:
    return tuple(column_name(k) for k in REPLICATED_TABLES[table].key)


class DbtEnv:
    """One isolated dbt environment: profiles copy, warehouse + source files, target/log dirs."""

    def __init__(self, tmp: Path, source_path: Path | None = None):
        self.tmp = tmp
        self.profiles_dir = tmp / "profiles"
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROFILES_EXAMPLE, self.profiles_dir / "profiles.yml")
        self.warehouse = tmp / "warehouse.duckdb"
        self.source = source_path or tmp / "exigo_source.duckdb"
        self.target_path = tmp / "target"
        self.log_path = tmp / "logs"
        # Relative to the profile's folder (where dbt runs, as in a batch): the profile renders
        # the same in every test, so dbt accepts an earlier test's parse (tests/parse_cache.py).
        self.env = {
            "EXIGO_SYNC_WAREHOUSE_PATH": os.path.relpath(self.warehouse, self.profiles_dir),
            "EXIGO_SYNC_SOURCE_PATH": os.path.relpath(self.source, self.profiles_dir),
            "EXIGO_SYNC_MSSQL_USER": "exigo_test",
            "EXIGO_SYNC_MSSQL_PASSWORD": "not-a-secret",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DO_NOT_TRACK": "1",
        }

    @classmethod
    def copy_of(cls, built: Path, tmp: Path) -> DbtEnv:
        """A private environment in `tmp` starting from the warehouse and source files of the
        environment built in `built` (a session template, another test's env)."""
        tmp.mkdir(parents=True, exist_ok=True)
        for name in ("warehouse.duckdb", "exigo_source.duckdb"):
            shutil.copy(built / name, tmp / name)
        return cls(tmp)

    @contextmanager
    def _environ(self, extra: Mapping[str, str] | None = None):
        saved = {k: os.environ.get(k) for k in {**self.env, **(extra or {})}}
        os.environ.update(self.env)
        os.environ.update(extra or {})
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def invoke(
        self,
        *args: str,
        batch_id: int | None = None,
        refreshed_at: datetime | None = None,
        env: Mapping[str, str] | None = None,
        extra_vars: Mapping[str, Any] | None = None,
    ) -> dbtRunnerResult:
        vars_: dict[str, Any] = dict(extra_vars or {})
        if batch_id is not None:
            vars_["exigo_batch_id"] = batch_id
        if refreshed_at is not None:
            vars_["exigo_batch_refreshed_at"] = refreshed_at.isoformat()
        cli = [
            *args,
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(self.profiles_dir),
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.log_path),
            "--log-level-file",
            "info",  # as a batch's dbt (the dbt_log_level_file setting's default)
            "--quiet",
        ]
        dbt_vars = yaml.safe_dump(vars_, default_flow_style=True).strip() if vars_ else ""
        if vars_:
            cli += ["--vars", dbt_vars]
        with self._environ(env):
            # dbt's parse of an earlier test with the same inputs (tests/parse_cache.py).
            parse_key = parse_cache.key(self.profiles_dir, PROJECT_DIR, dbt_vars)
            cwd = os.getcwd()
            os.chdir(self.profiles_dir)  # where a batch's dbt runs (exigo_sync.dbt_runner)
            try:
                with parse_cache.seeded(self.target_path, parse_key):
                    return dbtRunner().invoke(cli)
            finally:
                os.chdir(cwd)
                release_duckdb()

    def fast_build(self, batch_id: int, refreshed_at: datetime, **kw) -> dbtRunnerResult:
        """The merge models and their H3/C1 data tests only (no marts, no plain not_null/unique
        tests): what most tests need, in about half the time."""
        return self.build(batch_id, refreshed_at, *FAST_SELECTION, **kw)

    def build(
        self, batch_id: int, refreshed_at: datetime, *extra: str, find_missing: bool = False,
        handed: bool = True, **kw: Any,
    ) -> dbtRunnerResult:  # fmt: skip
        """The batch build the flow runs: everything but unit tests (they need built tables).
        As in the flow, the batch is the ledger's one batch `refreshed`, handed to dbt in its
        environment (`handed=False`: dbt reads it from the ledger, as a hand run does), not in
        vars: the vars stay the same from batch to batch, so dbt's partial parse is reused; and
        dbt reads the snapshot the flow pinned in the landing schemas (R3), pinned here from the
        simulator file's queue as the flow's co-located copy does."""
        self.record_refreshed_batch(batch_id, refreshed_at)
        if handed:
            kw["env"] = {**batch_env(batch_id, refreshed_at), **(kw.get("env") or {})}
        extra_vars = kw.get("extra_vars") or {}
        swept = extra_vars.get("exigo_deletion_sweep_entities", ["payments"])
        self.pin(
            batch_id, [swept] if isinstance(swept, str) else list(swept), find_missing,
            policy_vars=extra_vars,
        )  # fmt: skip
        # As the flow's build: no manifest written per batch (the result comes back in-process).
        return self.invoke(
            "build", "--exclude-resource-type", "unit_test", "--no-write-json", *extra, **kw
        )

    def pin(
        self, batch_id: int, swept: list[str], find_missing: bool = False,
        policy_vars: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """The flow's co-located copy of the simulator's queue (and the swept dbo keys, reopened
        rows, lookups) into the warehouse's landing schemas, for batch `batch_id`, under the
        project's sensitive-column policy (with the S2 vars of `policy_vars` in its place, as
        dbt takes them from --vars)."""
        from exigo_sync.policy import SensitivePolicy
        from exigo_sync.profiles import Target
        from exigo_sync.warehouse import landing

        landing.land_in_warehouse(
            landing.SourceInWarehouse("duckdb", str(self.source)),
            Target("duckdb", "duckdb", {"path": str(self.warehouse)}),
            batch_id,
            landing.tables_for_batch(swept),
            logger=logging.getLogger("tests.dbt"),
            policy=SensitivePolicy.load(PROJECT_DIR, policy_vars),
            find_missing=find_missing,
        )

    def record_refreshed_batch(self, batch_id: int, refreshed_at: datetime) -> None:
        """The ledger as the flow leaves it before dbt: `batch_id` is the one batch in status
        `refreshed` (an earlier one counts as merged: these tests judge dbt's result
        themselves)."""
        from exigo_sync.warehouse.duckdb_engine import DuckDbWarehouse
        from exigo_sync.warehouse.ledger import Ledger

        con = duckdb.connect(str(self.warehouse))
        try:
            Ledger(DuckDbWarehouse(con)).ensure_schema()
            con.execute(
                "update exigo_sync.batches set status = 'merged' "
                "where status in ('refreshing', 'refreshed')"
            )
            con.execute("delete from exigo_sync.batches where batch_id = ?", [batch_id])
            con.execute(
                "insert into exigo_sync.batches (batch_id, status, started_at, "
                "refresh_started_at) values (?, 'refreshed', ?, ?)",
                [batch_id, refreshed_at, refreshed_at],
            )
        finally:
            con.close()

    def query(self, sql: str, params: Iterable[Any] | None = None) -> list[dict[str, Any]]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            cur = con.execute(sql, list(params or []))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            con.close()

    def table_exists(self, schema: str, table: str) -> bool:
        rows = self.query(
            "select count(*) as n from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        )
        return rows[0]["n"] == 1


def release_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB instance (warehouse + attached source) open in-process after an
    invocation; the simulator and our queries must be able to open those files right after."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager._ENV = None


def failures(res: dbtRunnerResult) -> list[str]:
    """Readable list of failed nodes (empty when the invocation succeeded)."""
    out: list[str] = []
    if res.exception is not None:
        out.append(f"exception: {res.exception}")
    if res.result is not None and hasattr(res.result, "results"):
        for r in res.result.results:
            if str(r.status) not in ("success", "pass", "skipped"):
                out.append(f"{r.node.unique_id}: {r.status}: {r.message}")
    return out


# --------------------------------------------------------------------------------------------
# A hand-made source file (queue + dbo schemas) for the bad-input tests: no simulator needed.
# --------------------------------------------------------------------------------------------


def _default_value(sql_type: str) -> Any:
    t = duckdb_type(sql_type)
    if t == "VARCHAR":
        return "x"
    if t == "BOOLEAN":
        return False
    if t == "TIMESTAMP":
        return datetime(2026, 1, 1)
    if t.startswith("DECIMAL"):
        return Decimal("0")
    if t == "BLOB":
        return b"\x00"
    if t == "UUID":
        return "00000000-0000-0000-0000-000000000001"
    return 0


def default_row(table: str, **values: Any) -> dict[str, Any]:
    row = {
        c.name: (None if c.nullable else _default_value(c.sql_type))
        for c in REPLICATED_TABLES[table].columns
    }
    unknown = set(values) - set(row)
    row.update(values)
    # Unknown names are allowed on purpose (added-column tests); the table must have them.
    del unknown
    return row


def create_source(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        for schema in ("queue", "dbo"):
            con.execute(f"create schema if not exists {schema}")
            for t in REPLICATED_TABLES.values():
                cols = ", ".join(f'"{c.name}" {duckdb_type(c.sql_type)}' for c in t.columns)
                con.execute(f'create or replace table {schema}."{t.name}" ({cols})')
        for lk in LOOKUP_TABLES.values():
            con.execute(
                f'create or replace table dbo."{lk.name}" '
                f'("{lk.id_column}" INTEGER, "{lk.description_column}" VARCHAR)'
            )
            con.executemany(f'insert into dbo."{lk.name}" values (?, ?)', list(lk.values))
    finally:
        con.close()


def put_rows(path: Path, schema: str, table: str, rows: list[dict[str, Any]]) -> None:
    """Replace the content of schema.table with rows (their keys name the columns)."""
    con = duckdb.connect(str(path))
    try:
        con.execute(f'delete from {schema}."{table}"')
        for row in rows:
            names = ", ".join(f'"{n}"' for n in row)
            marks = ", ".join("?" for _ in row)
            con.execute(
                f'insert into {schema}."{table}" ({names}) values ({marks})', list(row.values())
            )
    finally:
        con.close()


def execute_source(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()
