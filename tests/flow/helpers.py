"""Helpers for the flow tests: one simulator + warehouse pair per test, run the flow, read back."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exigo_sync.catalog import REPLICATED_ENTITIES
from exigo_sync.settings import REPO_ROOT
from tests import parse_cache
from tests.dbt.helpers import apply_policy

CLOCK_START = datetime(2026, 1, 5)
CUSTOMERS = 300
OVERLAP = timedelta(minutes=10)  # the default overlap (settings.overlap_minutes)
# What the flow tests' batches leave out: dbt's tests, and the marts with the intermediate
# models only they read (not merge models, so L2 still holds the batch to every merge model).
MERGE_MODELS_ONLY = "resource_type:test tag:exigo_marts tag:exigo_intermediate"

# Columns that legitimately differ between two equivalent runs: which batch (and when, on the
# wall clock) first saw a version; `history_version_id` is "<key>@<batch_id>". Batch ids are
# ledger ids, and a crashed batch consumes one.
VOLATILE_COLUMNS = {"batch_id", "history_version_id", "rejected_at", "loaded_at", "merged_at"}


@dataclass
class SyncEnv:
    root: Path
    source: Path
    warehouse: Path
    profiles: Path

    @property
    def sim(self) -> Any:
        from exigo_sync.simulator import SyncSimulator

        return SyncSimulator(self.source)

    def run(self, **params: Any) -> Any:
        """Run the flow in-process; returns the final Prefect state (never raises)."""
        from exigo_sync.flow import exigo_sync

        # dbt starts from an earlier batch's parse (tests/parse_cache.py).
        target = Path(os.environ["EXIGO_SYNC_DBT_TARGET_PATH"])
        with parse_cache.seeded(target, flow_parse_key(self.profiles, params)):
            return exigo_sync(**params, return_state=True)

    def run_ok(self, **params: Any) -> dict[str, Any]:
        state = self.run(**params)
        assert state.is_completed(), state.message
        return state.result()

    def query(self, path: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def batches(self) -> list[dict[str, Any]]:
        from exigo_sync.warehouse.ledger_sql import BATCH_COLUMNS, BATCHES

        rows = self.query(self.warehouse, f"SELECT * FROM {BATCHES} ORDER BY batch_id")
        cols = [c for c in BATCH_COLUMNS]
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def refresh_calls(self) -> int:
        (n,) = self.query(self.source, "SELECT count(*) FROM sim.RefreshLog")[0]
        return int(n)

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every history/current table and the rejected rows: column names, then the sorted rows
        (without the volatile columns)."""
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            tables = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('exigo_history', 'exigo_current') "
                "OR table_name = 'exigo_rejected_rows' ORDER BY 1, 2"
            ).fetchall()
            out = {}
            for schema, table in tables:
                cols = [
                    r[0]
                    for r in con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE "
                        "table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                        [schema, table],
                    ).fetchall()
                    if r[0] not in VOLATILE_COLUMNS
                ]
                select = ", ".join(f'"{c}"' for c in cols)
                rows = con.execute(f'SELECT {select} FROM {schema}."{table}"').fetchall()
                out[f"{schema}.{table}"] = [tuple(cols), *sorted(rows, key=repr)]
            return out
        finally:
            con.close()


# The simulator as a source output of its own, streamed across (EXIGO_SYNC_TOPOLOGY=landed): the
# same DB-API cursor -> Arrow path a SQL Server source takes.
SOURCE_FILE, WAREHOUSE_FILE = "exigo_source.duckdb", "warehouse.duckdb"
LANDED_SOURCE_OUTPUT = """
    source_sim:
      type: duckdb
      path: "{{ env_var('EXIGO_SYNC_SOURCE_PATH') }}"
"""


def env_at(root: Path) -> SyncEnv:
    """The files of the env `make_env(root, ...)` made (its settings are the caller's)."""
    profiles = root / "profiles"
    return SyncEnv(root, profiles / SOURCE_FILE, profiles / WAREHOUSE_FILE, profiles)


def make_env(
    root: Path, template: Path, monkeypatch: pytest.MonkeyPatch, *, landed: bool = False
) -> SyncEnv:
    """Files and settings for one test. landed: the warehouse target `duckdb_local` (no
    attachment) with the simulator as output `source_sim`: the landed topology on DuckDB,
    through the same DB-API cursor -> Arrow path a SQL Server source takes."""
    root.mkdir(parents=True, exist_ok=True)
    profiles = root / "profiles"
    profiles.mkdir(exist_ok=True)
    profile_text = (REPO_ROOT / "profiles.example.yml").read_text()
    if landed:
        profile_text = profile_text.rstrip("\n") + "\n" + LANDED_SOURCE_OUTPUT
    (profiles / "profiles.yml").write_text(profile_text)
    # The files sit in the profile's folder, named relative to it as the example profile's own
    # defaults are: the profile renders the same in every test, so dbt accepts the parse of an
    # earlier test (tests/parse_cache.py; dbt compares the rendered connection settings).
    env = env_at(root)
    if template is not None:
        shutil.copyfile(template, env.source)
    for key, value in {
        "EXIGO_SYNC_PROFILES_DIR": str(profiles),
        "EXIGO_SYNC_TARGET": "duckdb",
        "EXIGO_SYNC_SOURCE_PATH": SOURCE_FILE,
        "EXIGO_SYNC_WAREHOUSE_PATH": WAREHOUSE_FILE,
        "EXIGO_SYNC_LOCK_TIMEOUT_SECONDS": "5",
        "EXIGO_SYNC_LOCK_POLL_SECONDS": "0.2",
        "EXIGO_SYNC_REFRESH_RETRIES": "2",
        "EXIGO_SYNC_REFRESH_RETRY_DELAY_SECONDS": "0.1",
        # dbt's artifacts per test: run_results.json judges the batch, and tests run in parallel.
        "EXIGO_SYNC_DBT_TARGET_PATH": str(root / "dbt-target"),
        "EXIGO_SYNC_DBT_LOG_PATH": str(root / "dbt-logs"),
        # Merge models only: the dbt project's own tests prove the models and the marts
        # (tests/dbt); here they would triple every batch's time. The end-to-end test runs the
        # full build once; the analytics-copy tests put the marts back (with_marts).
        "EXIGO_SYNC_DBT_EXCLUDE": MERGE_MODELS_ONLY,
    }.items():
        monkeypatch.setenv(key, value)
    if landed:
        monkeypatch.setenv("EXIGO_SYNC_TARGET", "duckdb_local")
        monkeypatch.setenv("EXIGO_SYNC_SOURCE_TARGET", "source_sim")
        monkeypatch.setenv("EXIGO_SYNC_TOPOLOGY", "landed")
    else:
        monkeypatch.delenv("EXIGO_SYNC_SOURCE_TARGET", raising=False)
        monkeypatch.delenv("EXIGO_SYNC_TOPOLOGY", raising=False)
    monkeypatch.delenv("EXIGO_SYNC_FAULT", raising=False)
    monkeypatch.delenv("EXIGO_SYNC_FAULT_MODE", raising=False)
    return env


def merge_models_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faster batches: no dbt tests and no analyst marts (make_env's default)."""
    monkeypatch.setenv("EXIGO_SYNC_DBT_EXCLUDE", MERGE_MODELS_ONLY)


def with_marts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches that build the analyst marts too (still no dbt tests)."""
    monkeypatch.setenv("EXIGO_SYNC_DBT_EXCLUDE", "resource_type:test")


def flow_parse_key(
    profiles: Path, params: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> str:
    """The parse_cache key of a batch run with flow `params` (those that change dbt's vars)."""
    vars_params = {k: params.get(k) for k in ("reconcile", "confirm_deletions")}
    return parse_cache.key(profiles, repr(sorted(vars_params.items())), environ=environ)


def copy_files(src: SyncEnv, dst: SyncEnv) -> None:
    """The source and the warehouse, with what the batches left beside the warehouse file (its
    analytics copy's slots and link, its live status file)."""
    shutil.copyfile(src.source, dst.source)
    assert src.warehouse.name == dst.warehouse.name
    stem = src.warehouse.stem
    for path in src.warehouse.parent.iterdir():
        if not path.name.startswith((f"{stem}.", f".{stem}.")):
            continue
        copied = dst.warehouse.parent / path.name
        if path.is_symlink():
            copied.symlink_to(os.readlink(path))
        elif path.is_dir():
            shutil.copytree(path, copied, symlinks=True)
        else:
            shutil.copyfile(path, copied)


def nodes_run(env: SyncEnv, resource_type: str) -> set[str]:
    """The nodes of a type (model, test) the last batch's dbt build ran, by name."""
    results = json.loads((env.root / "dbt-target" / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].split(".")[2]
        for r in results
        if r["unique_id"].startswith(f"{resource_type}.")
    }


def models_run(env: SyncEnv) -> set[str]:
    return nodes_run(env, "model")


def advance(env: SyncEnv, hours: float) -> None:
    env.sim.advance(timedelta(hours=hours))


def prefect_logs_and_artifacts() -> str:
    """Every log line and artifact on the test API, as one text (for S1 scans)."""
    from prefect import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    chunks: list[str] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            logs = client.read_logs(limit=200, offset=offset)
            chunks += [log.message for log in logs]
            if len(logs) < 200:
                break
            offset += 200
        chunks += [str(a.data) + str(a.description) for a in client.read_artifacts()]
    return "\n".join(chunks)


def table_diff(actual: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> str:
    """A readable account of how two snapshots differ ('' when equal)."""
    lines = []
    for name in sorted(set(actual) | set(expected)):
        a, e = actual.get(name), expected.get(name)
        if a == e:
            continue
        if a is None or e is None:
            lines.append(f"{name}: only in {'expected' if a is None else 'actual'}")
            continue
        cols = e[0]
        extra, missing = set(a[1:]) - set(e[1:]), set(e[1:]) - set(a[1:])
        lines.append(f"{name}: {len(a) - 1} rows vs {len(e) - 1} expected")
        for tag, rows in (("+", extra), ("-", missing)):
            for row in sorted(rows, key=repr)[:3]:
                lines.append(
                    f"  {tag} " + ", ".join(f"{c}={v!r}" for c, v in zip(cols, row, strict=False))
                )
    return "\n".join(lines)


def assert_current_equals_source(env: SyncEnv) -> int:
    """T1 after a reconciliation: every current-state table equals dbo, key for key (S2
    applied); returns how many keys were compared."""
    compared = 0
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        for entity in REPLICATED_ENTITIES:
            truth = {
                tuple(r[k] for k in entity.keys): apply_policy(entity.table, r)
                for r in env.sim.current_rows(entity.table)
            }
            cur = con.execute(f"SELECT * FROM exigo_current.{entity.name}_current")
            names = [d[0] for d in cur.description]
            live = {}
            for row in cur.fetchall():
                rec = dict(zip(names, row, strict=True))
                if not rec["is_deleted"]:
                    live[tuple(rec[c] for c in entity.key_columns)] = rec
            assert live.keys() == truth.keys(), (
                f"T1: {entity.name}: {len(truth.keys() - live.keys())} source keys missing, "
                f"{len(live.keys() - truth.keys())} deleted keys still live"
            )
            for key, want in truth.items():
                got = live[key]
                diff = {c: (v, got.get(c)) for c, v in want.items() if got.get(c) != v}
                assert not diff, f"T1: {entity.name} {key} differs from dbo: {list(diff)[:5]}"
                compared += 1
    finally:
        con.close()
    return compared
