"""The analytics copy of a DuckDB warehouse (exigo_sync.warehouse.analytics_copy) on its own, no
flow run: where the copy goes, a checkpoint first (changes still in the WAL reach the copy), the
kernel copy byte for byte (and the buffered copy where the kernel refuses), and a failed replace
that keeps the previous copy. What the flow does with it: tests/flow/test_analytics_copy.py;
the copy kept batch by batch: tests/flow/test_analytics_copy_batches.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from exigo_sync.profiles import Target
from exigo_sync.warehouse import analytics_copy


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
    # The link readers open, and the slots behind it (two copies, A/B): no temporary file.
    assert sorted(p.name for p in dest.parent.iterdir()) == [
        ".analytics.duckdb.slots",
        "analytics.duckdb",
    ]
    assert not [p for p in dest.parent.rglob("*") if p.name.endswith(".tmp")]


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
