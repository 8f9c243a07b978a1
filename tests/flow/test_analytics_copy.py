"""The analytics copy of a DuckDB warehouse (exigo_sync.warehouse.analytics_copy): after every
merged batch the flow publishes a read-only copy; a reader holding it open (another process,
read-only) never blocks the next batch; the copy equals the warehouse after the batch, tables
and view results; a copy that cannot be published leaves the batch merged."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from exigo_sync.profiles import Target
from exigo_sync.warehouse import analytics_copy
from tests.flow.helpers import SyncEnv, advance, prefect_logs_and_artifacts

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


# --- the module on its own (no flow) ---------------------------------------------------------


def _warehouse(path: Path) -> Target:
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema exigo_sync")
        con.execute("create table exigo_sync.batches (batch_id bigint, status varchar)")
        con.execute("create schema exigo_marts")
        con.execute("create view exigo_marts.merged as select * from exigo_sync.batches")
    finally:
        con.close()
    return Target("duckdb", "duckdb", {"path": str(path)})


def test_changes_still_in_the_write_ahead_log_reach_the_copy(tmp_path: Path) -> None:
    """CHECKPOINT first: a warehouse whose last changes sit in its WAL (a writer that closed
    without checkpointing) is copied with them."""
    target = _warehouse(tmp_path / "warehouse.duckdb")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("set checkpoint_threshold = '1GB'")
    con.execute("pragma disable_checkpoint_on_shutdown")
    con.execute("insert into exigo_sync.batches values (1, 'merged')")
    con.close()
    assert Path(f"{tmp_path / 'warehouse.duckdb'}.wal").stat().st_size > 0
    copy = analytics_copy.publish(target, tmp_path / "warehouse.analytics.duckdb")
    check = duckdb.connect(str(copy), read_only=True)
    try:
        assert check.execute("select * from exigo_marts.merged").fetchall() == [(1, "merged")]
    finally:
        check.close()


def test_a_failed_replace_keeps_the_previous_copy_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _warehouse(tmp_path / "warehouse.duckdb")
    dest = tmp_path / "copies" / "analytics.duckdb"
    analytics_copy.publish(target, dest)
    before = dest.read_bytes()
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("insert into exigo_sync.batches values (2, 'merged')")
    con.close()

    def fail(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(analytics_copy.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        analytics_copy.publish(target, dest)
    assert dest.read_bytes() == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["analytics.duckdb"]


def test_where_the_copy_goes() -> None:
    duck = Target("duckdb", "duckdb", {"path": "data/warehouse.duckdb"})
    assert analytics_copy.destination(duck, None) == Path("data/warehouse.analytics.duckdb")
    assert analytics_copy.destination(duck, "/srv/bi/exigo.duckdb") == Path("/srv/bi/exigo.duckdb")
    assert analytics_copy.destination(duck, "off") is None
    sqlserver = Target("sqlserver", "sqlserver", {"server": "db"})
    assert analytics_copy.destination(sqlserver, None) is None  # readers use the server


def _with_rows(path: Path, rows: int) -> Target:
    """A warehouse of several MB, so that a copy takes many copy_file_range calls."""
    target = _warehouse(path)
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "create table exigo_sync.filler as select i, md5(i::varchar) as h from range(?) t(i)",
            [rows],
        )
    finally:
        con.close()
    return target


def test_the_copy_is_the_warehouse_byte_for_byte(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The kernel copy (copy_file_range on Linux) reproduces every byte of the file; the log
    says how large the copy was and where its time went."""
    target = _with_rows(tmp_path / "warehouse.duckdb", 300_000)
    with caplog.at_level("INFO", logger=analytics_copy.__name__):
        copy = analytics_copy.publish(target, tmp_path / "warehouse.analytics.duckdb")
    assert copy.read_bytes() == (tmp_path / "warehouse.duckdb").read_bytes()
    (message,) = [r.getMessage() for r in caplog.records if "analytics copy" in r.getMessage()]
    size_gb = (tmp_path / "warehouse.duckdb").stat().st_size / 1e9
    assert message.startswith(f"analytics copy: {size_gb:.2f} GB in ")
    for step in ("open", "checkpoint", "copy", "fsync", "check"):
        assert f"{step} " in message


@pytest.mark.parametrize("fails_after", [0, 1])
def test_where_the_kernel_refuses_to_copy_a_buffered_copy_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails_after: int
) -> None:
    """copy_file_range fails with EXDEV (e.g. across file systems on older kernels) at once or
    after a first chunk (a double around the real call): the buffered copy continues from where
    the kernel stopped, and the copy is still every byte of the warehouse."""
    target = _with_rows(tmp_path / "warehouse.duckdb", 300_000)
    real = os.copy_file_range
    calls: list[int] = []

    def refusing(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        calls.append(count)
        if len(calls) > fails_after:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst, min(count, 1 << 20), offset_src, offset_dst)

    monkeypatch.setattr(analytics_copy.os, "copy_file_range", refusing)
    copy = analytics_copy.publish(target, tmp_path / "warehouse.analytics.duckdb")
    assert len(calls) == fails_after + 1
    assert copy.read_bytes() == (tmp_path / "warehouse.duckdb").read_bytes()
