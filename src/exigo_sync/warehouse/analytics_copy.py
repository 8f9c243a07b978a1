"""The analytics copy: a read-only copy of a DuckDB warehouse, published after each merged batch.

DuckDB lets one process write a file, and a process holding the file open (even read-only)
keeps every other process from opening it for writing. An analyst or BI tool with the warehouse
open would therefore make the next batch fail with "warehouse in use". Readers open the
analytics copy instead: the batch never waits for them, and they see one merged batch at a time.

How the copy is taken, and why it is consistent: the flow calls `publish` while it holds the run
lock, after dbt has exited and the ledger says `merged`, so nothing else writes the warehouse.
`publish` opens it read-write (DuckDB's exclusive file lock: no other process can open it while the
bytes are copied), runs CHECKPOINT (everything in the write-ahead log is written into the file, and
the WAL is emptied), checks that no WAL is left, and copies the file's bytes to a temporary file
next to the destination (in the kernel where it can: `_copy_bytes`). The temporary file is fsynced,
opened read-only once to prove it is a DuckDB database holding the ledger, and renamed over the
destination with `os.replace` (atomic on one file system). A reader that has the old copy open keeps
reading it (POSIX: its file descriptor holds the old inode) until it reconnects; a reader that
connects afterwards gets the new one. The byte copy carries everything the file holds: tables, views
(the marts: DuckDB stores a view's SQL with names relative to its own catalog, so they resolve in
the copy whatever it is called), macros, sequences. `ATTACH ... COPY FROM DATABASE` (a logical copy)
was the alternative; it re-encodes every row, so it costs CPU where a byte copy costs I/O.

SQL Server needs no copy: readers and the batch share the server under its own locking.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from exigo_sync.profiles import Target
from exigo_sync.warehouse.connection import engine
from exigo_sync.warehouse.duckdb_engine import open_duckdb

_LOG = logging.getLogger(__name__)
# EXIGO_SYNC_ANALYTICS_COPY_PATH value that turns the copy off.
DISABLED = "off"
_TEMP_SUFFIX = ".tmp"


class AnalyticsCopyError(RuntimeError):
    """The copy could not be published; the previous copy (if any) is unchanged."""


def default_path(warehouse: Path) -> Path:
    """`<warehouse>.analytics.duckdb`: data/warehouse.duckdb -> data/warehouse.analytics.duckdb."""
    stem = warehouse.name.removesuffix(".duckdb")
    return warehouse.with_name(f"{stem}.analytics.duckdb")


def destination(warehouse: Target, configured: str | None) -> Path | None:
    """Where the copy of `warehouse` goes: the configured path, the default next to the
    warehouse file, or None (a SQL Server warehouse, or the copy turned off)."""
    if engine(warehouse) != "duckdb":
        return None
    if configured is not None and configured.strip().lower() in (DISABLED, ""):
        return None
    if configured:
        return Path(configured).expanduser().resolve()
    return default_path(warehouse.warehouse_path())


def publish(
    warehouse: Target, dest: Path, logger: logging.Logger | logging.LoggerAdapter[Any] = _LOG
) -> Path:
    """Replace `dest` with a copy of the DuckDB warehouse (see the module docstring). Call it
    only where nothing writes the warehouse (the flow: under the run lock, after the ledger).
    Logs the size and where the time went: the copy grows with the warehouse file."""
    source = warehouse.warehouse_path()
    if dest.resolve() == source.resolve():
        raise AnalyticsCopyError(f"the analytics copy path {dest} is the warehouse itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)
    temp = dest.with_name(f".{dest.name}.{os.getpid()}{_TEMP_SUFFIX}")
    seconds: dict[str, float] = {}
    try:
        with _timed(seconds, "open"):
            con = open_duckdb(warehouse)  # read-write: DuckDB's exclusive lock while copying
        try:
            with _timed(seconds, "checkpoint"):
                con.execute("CHECKPOINT")
            wal = Path(f"{source}.wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise AnalyticsCopyError(
                    f"{wal} still holds changes after CHECKPOINT; not copying a partial warehouse"
                )
            size = _copy_bytes(source, temp, seconds)
        finally:
            con.close()
        with _timed(seconds, "check"):
            _check_readable(temp)
        os.replace(temp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    logger.info(
        "analytics copy: %.2f GB in %.1f s (%s) -> %s",
        size / 1e9,
        sum(seconds.values()),
        ", ".join(f"{step} {s:.2f} s" for step, s in seconds.items()),
        dest,
    )
    return dest


@contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[step] = time.perf_counter() - started


def _copy_bytes(source: Path, temp: Path, seconds: dict[str, float]) -> int:
    """Copy `source` to `temp` and fsync it; returns the size. Linux copies in the kernel
    (copy_file_range: the bytes never pass through this process, several times faster than a
    buffered copy on ext4, and a reflink, O(1), on file systems that share extents such as XFS
    and btrfs); elsewhere, or where the kernel refuses, a buffered copy."""
    with open(source, "rb") as src, open(temp, "wb") as out:
        size = os.fstat(src.fileno()).st_size
        with _timed(seconds, "copy"):
            copied = _kernel_copy(src.fileno(), out.fileno(), size)
            if copied < size:
                src.seek(copied)
                out.seek(copied)
                out.truncate()
                shutil.copyfileobj(src, out, length=16 * 1024 * 1024)
                out.flush()
        with _timed(seconds, "fsync"):
            os.fsync(out.fileno())
    return size


def _kernel_copy(src: int, out: int, size: int) -> int:
    """Bytes copied by copy_file_range from the start of both files (0 if unavailable)."""
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is None:
        return 0
    copied = 0
    try:
        while copied < size:
            step = copy_file_range(src, out, size - copied, copied, copied)
            if step == 0:
                break
            copied += step
    except OSError:
        pass  # EXDEV, ENOSYS, EINVAL...: the buffered copy continues from `copied`
    return copied


def _check_readable(path: Path) -> None:
    """The copy opens read-only and holds the ledger: never replace a good copy with a bad one."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise AnalyticsCopyError(f"the copy {path} does not open: {exc}") from None
    try:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'exigo_sync' AND table_name = 'batches'"
        ).fetchone()
    finally:
        con.close()
    if not found or found[0] != 1:
        raise AnalyticsCopyError(f"the copy {path} holds no ledger (exigo_sync.batches)")


def _remove_stale_temps(dest: Path) -> None:
    """Temporary files a killed copy left next to the destination (ours only, by name)."""
    for stale in dest.parent.glob(f".{dest.name}.*{_TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
