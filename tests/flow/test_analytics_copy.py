"""The analytics copy of a DuckDB warehouse (exigo_sync.warehouse.analytics_copy): after every
merged batch the flow publishes a read-only copy; a reader holding it open (another process,
read-only) never blocks the next batch; the copy equals the warehouse after the batch, tables
and view results; a copy that cannot be published leaves the batch merged. (The module on its
own, no flow run: tests/warehouse/test_analytics_copy.py.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from tests.flow.helpers import SyncEnv, advance, prefect_logs_and_artifacts, with_marts

# The lock row is released after the copy is taken: the copy shows it held by the batch's run.
NOT_COPIED_AS_IS = {("exigo_sync", "run_lock")}

READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    query = "select max(batch_id) from exigo_sync.batches where status = 'merged'"
    mart = "select count(*) from exigo_marts.fct_orders"
    for line in sys.stdin:  # one answer per line received: the copy stays open in between
        print(con.execute(query).fetchone()[0], con.execute(mart).fetchone()[0], flush=True)
    """
)


def relations(path: Path) -> dict[str, list[tuple]]:
    """Every table and view of a DuckDB file (but the lock row): sorted rows, views evaluated."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() order by 1, 2"
        ).fetchall()
        out = {}
        for schema, name, kind in names:
            if (schema, name) in NOT_COPIED_AS_IS:
                continue
            rows = con.execute(f'select * from "{schema}"."{name}"').fetchall()
            out[f"{kind} {schema}.{name}"] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def assert_copy_equals_warehouse(env: SyncEnv, copy: Path) -> None:
    warehouse, copied = relations(env.warehouse), relations(copy)
    assert set(copied) == set(warehouse)
    views = [n for n in warehouse if n.startswith("VIEW exigo_marts.")]
    assert len(views) >= 9, views  # the marts survived as views, and they answer
    different = [n for n in warehouse if warehouse[n] != copied[n]]
    assert not different, different


@pytest.fixture(autouse=True)
def _marts_in_every_batch(sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy holds the analyst marts too: these batches build them."""
    with_marts(monkeypatch)


def test_copy_is_published_equals_the_warehouse_and_readers_never_block_a_batch(
    sync_env: SyncEnv,
) -> None:
    env = sync_env
    out1 = env.run_ok()
    copy = env.warehouse.with_name("warehouse.analytics.duckdb")
    assert out1["analytics_copy"] == str(copy)  # the default: <warehouse>.analytics.duckdb
    assert_copy_equals_warehouse(env, copy)
    assert not list(copy.parent.glob(".*.tmp")), "a temporary file was left"

    # A reader in another process opens the copy read-only and keeps it open.
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(copy)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdin and reader.stdout
        reader.stdin.write("?\n")
        reader.stdin.flush()
        batch_seen, orders_seen = map(int, reader.stdout.readline().split())
        assert batch_seen == out1["batch_id"]

        # The next batch runs, merges and publishes while the reader holds the old copy.
        advance(env, 3)
        out2 = env.run_ok()
        assert out2["batch_id"] == out1["batch_id"] + 1
        assert out2["analytics_copy"] == str(copy)
        assert env.batches()[-1]["status"] == "merged"
        assert reader.poll() is None, "the reader died"

        # The reader still reads the copy it opened (one merged batch at a time) ...
        reader.stdin.write("?\n")
        reader.stdin.flush()
        assert tuple(map(int, reader.stdout.readline().split())) == (batch_seen, orders_seen)
    finally:
        reader.kill()
        reader.wait()
    # ... and whoever opens it now gets the new one, equal to the warehouse after batch 2.
    assert_copy_equals_warehouse(env, copy)
    artifacts = prefect_logs_and_artifacts()
    assert f"analytics copy (read-only; open this one from BI tools): `{copy}`" in artifacts


def test_a_copy_that_fails_leaves_the_batch_merged(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the copy's directory should be")
    monkeypatch.setenv("EXIGO_SYNC_ANALYTICS_COPY_PATH", str(blocker / "copy.duckdb"))
    out = sync_env.run_ok()
    assert out["analytics_copy"] is None
    assert sync_env.batches()[-1]["status"] == "merged"
    assert "analytics copy not published (batch merged all the same)" in (
        prefect_logs_and_artifacts()
    )
