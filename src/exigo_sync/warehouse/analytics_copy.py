"""The analytics copy: a read-only copy of a DuckDB warehouse, published after each merged batch.

DuckDB lets one process write a file, and a process holding the file open (even read-only)
keeps every other process from opening it for writing. An analyst or BI tool with the warehouse
open would therefore make the next batch fail with "warehouse in use". Readers open the
analytics copy instead: the batch never waits for them, and they see one merged batch at a time.

Layout. The copy readers open, `<warehouse>.analytics.duckdb`, is a symbolic link to one of two
copy files (slots `a` and `b`) in a hidden directory next to it:

    warehouse.analytics.duckdb -> .warehouse.analytics.duckdb.slots/a/warehouse.analytics.duckdb
    .warehouse.analytics.duckdb.slots/{a,b}/warehouse.analytics.duckdb   (same file name: DuckDB
                                       names the catalog after the file, so readers' qualified
                                       names do not change when the link moves)
    .warehouse.analytics.duckdb.slots/{a,b}.json   what the slot holds (warehouse, last batch)

A publication brings the standby slot (the one the link does not point to) up to the warehouse
and then moves the link to it (a new link renamed over the old one with `os.replace`: atomic on
one file system). A reader that has the previous copy open keeps reading that file, whole and
unchanged, until it reconnects; a reader that connects afterwards opens the new one.

How the standby is brought up to date, and why it is consistent: the flow calls `publish` while
it holds the run lock, after dbt has exited and the ledger says `merged`, so nothing else writes
the warehouse. `publish` opens it read-write (DuckDB's exclusive file lock) and ATTACHes the
standby read-write into that connection (the warehouse cannot be attached from a second
connection while the flow holds it). In one transaction it applies to the standby what the
batches since the standby's last refresh changed (its json names that batch), table by table:

- history (`*_history`): the rows those batches opened (`batch_id` newer than the slot's) and
  the rows they closed (an older version whose `valid_to` is a new version's `valid_from`, same
  key: exigo_history_closed_versions), replaced by `history_version_id`;
- current state and the status-change tables (`*_current`, `int_*_status_changes`): the rows
  with a newer `batch_id`, replacing every row of their keys (the models' delete+insert);
- the rejected rows (append-only): the newer batches' rows;
- every other table (landing, staging, the ledger): copied whole. These are the batch's own
  inputs, rewritten by every batch (their size is the batch's), and the ledger (a row per batch).

Then it checks that every table the batch changed holds as many rows as the warehouse's,
CHECKPOINTs and DETACHes the standby, checks that it opens read-only and holds the ledger, writes
the slot's json and moves the link. The cost is the batch's: rows found through `batch_id` (the
incremental tables are appended in batch order, so DuckDB skips the row groups older batches
wrote by their min/max statistics) and one hash-join pass over the standby's history to replace
the closed versions.

The standby is rebuilt whole (CHECKPOINT of the warehouse, a byte copy of the file: `_copy_bytes`,
in the kernel where it can) when it is missing, when its json is missing or does not match this
warehouse's ledger (another warehouse, a restored one, a failed refresh), when its schema differs
from the warehouse's (a table or column added, removed or retyped, a view or macro changed: the
marts are views, and DuckDB stores their SQL relative to the file's own catalog, so a whole copy
carries them), when a reader still holds it open (it then writes a new file under the same name:
the reader keeps the old one), or when the row counts disagree after the changes. So the first
publication, and the one after it (for the second slot), copy the file; the next ones apply
changes. The log says which, and where the time went.

A publication that fails leaves the link where it was (the previous copy, whole); the standby's
json is removed before the standby is touched, so a later publication rebuilds it.

SQL Server needs no copy: readers and the batch share the server under its own locking.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from exigo_sync.catalog import ENTITIES
from exigo_sync.profiles import Target
from exigo_sync.quoting import literal, quote
from exigo_sync.warehouse.connection import engine
from exigo_sync.warehouse.duckdb_engine import open_duckdb

_LOG = logging.getLogger(__name__)
# EXIGO_SYNC_ANALYTICS_COPY_PATH value that turns the copy off.
DISABLED = "off"
_TEMP_SUFFIX = ".tmp"
SLOTS = ("a", "b")
# The standby's catalog name in the warehouse connection while it is brought up to date.
_STANDBY = "exigo_analytics_standby"
_LEDGER = ("exigo_sync", "batches")
# Tables kept by key: (table name -> key columns). History and current state per entity; the
# status-change models are incremental on their entity's key (exigo_status_changes).
_HISTORY_KEYS = {f"{e.name}_history": e.key_columns for e in ENTITIES.values()}
_KEYED = {
    **{f"{e.name}_current": e.key_columns for e in ENTITIES.values()},
    "int_customer_status_changes": ENTITIES["customers"].key_columns,
    "int_order_status_changes": ENTITIES["orders"].key_columns,
}
_APPENDED = {"exigo_rejected_rows"}
_HISTORY_COLUMNS = {"batch_id", "history_version_id", "valid_from", "valid_to"}


# (schema, table, columns in order, the warehouse's CREATE TABLE statement)
_Table = tuple[str, str, list[str], str]


class AnalyticsCopyError(RuntimeError):
    """The copy could not be published; the previous copy (if any) is unchanged."""


class _Rebuild(Exception):
    """The standby cannot take the batches' changes: rebuild it whole (the message says why)."""


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


def slots_dir(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.slots")


def slot_path(dest: Path, slot: str) -> Path:
    return slots_dir(dest) / slot / dest.name


def current_slot(dest: Path) -> str | None:
    """The slot the copy's link points to (None: no link, e.g. no copy yet)."""
    if not dest.is_symlink():
        return None
    parts = Path(os.readlink(dest)).parts
    if len(parts) == 3 and parts[0] == slots_dir(dest).name and parts[1] in SLOTS:
        return parts[1]
    return None


@dataclass(frozen=True)
class _Merged:
    """The newest merged batch of a warehouse's ledger: what a slot records it holds."""

    batch_id: int
    finished_at: str
    invocation_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "finished_at": self.finished_at,
                "invocation_id": self.invocation_id}  # fmt: skip


def publish(
    warehouse: Target, dest: Path, logger: logging.Logger | logging.LoggerAdapter[Any] = _LOG
) -> Path:
    """Bring the standby copy up to the DuckDB warehouse and point `dest` at it (see the module
    docstring). Call it only where nothing writes the warehouse (the flow: under the run lock,
    after the ledger). Logs what was done (the batches' changes, or a whole copy and why) and
    where the time went."""
    source = warehouse.warehouse_path()
    if dest.resolve() == source.resolve():
        raise AnalyticsCopyError(f"the analytics copy path {dest} is the warehouse itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest)
    current = current_slot(dest)
    standby = SLOTS[1] if current == SLOTS[0] else SLOTS[0]
    path = slot_path(dest, standby)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_file = slots_dir(dest) / f"{standby}.json"
    recorded = _read_state(state_file)
    # From here on the standby may change: without its json it is rebuilt, never trusted.
    state_file.unlink(missing_ok=True)
    _fsync_dir(state_file.parent)
    seconds: dict[str, float] = {}
    rebuilt: str | None = None  # why the standby was copied whole
    with _timed(seconds, "open"):
        con = open_duckdb(warehouse)  # read-write: DuckDB's exclusive lock, nobody writes
    try:
        merged = _last_merged(con.raw)
        try:
            done = _apply_changes(con.raw, path, recorded, merged, source, seconds)
        except _Rebuild as why:
            rebuilt = str(why)
            done = f"{_rebuild(con.raw, source, path, seconds) / 1e9:.2f} GB"
    finally:
        con.close()
    with _timed(seconds, "check"):
        _check_readable(path)
    state = {"warehouse": str(source.resolve()), "merged": merged and merged.as_dict()}
    _write_state(state_file, state)
    _point(dest, standby)
    took = ", ".join(f"{step} {s:.2f} s" for step, s in seconds.items())
    if rebuilt is not None:
        logger.info(
            "analytics copy: %s in %.1f s (%s) -> %s (slot %s copied whole: %s)",
            done, sum(seconds.values()), took, dest, standby, rebuilt,
        )  # fmt: skip
    else:
        logger.info(
            "analytics copy: %s in %.2f s (%s) -> %s (slot %s)",
            done, sum(seconds.values()), took, dest, standby,
        )  # fmt: skip
    return dest


def _apply_changes(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    recorded: dict[str, Any] | None,
    merged: _Merged | None,
    source: Path,
    seconds: dict[str, float],
) -> str:
    """Apply to the standby the changes of the batches after the one it holds; raises _Rebuild
    when it cannot (why in the message). Returns what was done, for the log."""
    if not path.exists():
        raise _Rebuild("no copy in this slot yet")
    if recorded is None:
        raise _Rebuild("the slot's record is missing or unreadable")
    if recorded.get("warehouse") != str(source.resolve()):
        raise _Rebuild(f"the slot holds a copy of {recorded.get('warehouse')}")
    held = recorded.get("merged") or {}
    since = held.get("batch_id")
    if merged is None or not isinstance(since, int) or since > merged.batch_id:
        raise _Rebuild("the slot's batch is not in this warehouse's ledger")
    same = _Merged(since, held.get("finished_at"), held.get("invocation_id"))
    if _merged_batch(con, since) != same:
        raise _Rebuild(f"batch {since} of the slot is not this warehouse's batch {since}")
    if Path(f"{path}.wal").exists():
        raise _Rebuild("the slot has a write-ahead log (a refresh that did not finish)")
    wh = _catalog(con)
    with _timed(seconds, "attach"):
        try:
            con.execute(f"ATTACH {literal(path)} AS {_STANDBY}")
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise _Rebuild("a reader still has this slot open") from None
            raise _Rebuild(f"the slot does not open: {exc}") from None
        except duckdb.Error as exc:
            raise _Rebuild(f"the slot does not open: {exc}") from None
    try:
        with _timed(seconds, "compare"):
            ours, theirs = _schema(con, wh, _STANDBY)
            if ours != theirs:
                raise _Rebuild(f"the schema changed ({_schema_difference(ours, theirs)})")
        tables = _tables(con, wh)
        counts: dict[str, int] = {}
        con.begin()
        try:
            with _timed(seconds, "apply"):
                _drop_tables_gone(con, tables)
                for schema, table, columns, ddl in tables:
                    counts[f"{schema}.{table}"] = _apply_table(
                        con, wh, schema, table, columns, ddl, since
                    )
            with _timed(seconds, "verify"):
                _verify_counts(con, wh, tables)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        with _timed(seconds, "checkpoint"):
            con.execute(f"CHECKPOINT {_STANDBY}")
    finally:
        con.execute(f"USE {quote(wh)}")
        con.execute(f"DETACH {_STANDBY}")
    if Path(f"{path}.wal").exists() and Path(f"{path}.wal").stat().st_size > 0:
        raise AnalyticsCopyError(f"{path}.wal still holds changes after CHECKPOINT")
    changed = sum(counts.values())
    return (
        f"batches {since + 1}..{merged.batch_id} applied, {changed:,} rows changed"
        if merged.batch_id > since
        else f"no batch since {since}, {changed:,} rows"
    )


def _apply_table(
    con: duckdb.DuckDBPyConnection,
    wh: str,
    schema: str,
    table: str,
    columns: Sequence[str],
    ddl: str,
    since: int,
) -> int:
    """One table's changes into the standby (inside the caller's transaction); the rows written
    (0 for a table copied whole)."""
    name = f"{quote(schema)}.{quote(table)}"
    ours, theirs = f"{quote(wh)}.{name}", f"{_STANDBY}.{name}"
    kind, keys = _plan(table, columns)
    if kind == "whole":  # created again as the warehouse has it (a batch may drop or change it)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_STANDBY}.{quote(schema)}")
        con.execute(f"DROP TABLE IF EXISTS {theirs}")
        con.execute(f"USE {_STANDBY}")
        try:
            con.execute(ddl)
        finally:
            con.execute(f"USE {quote(wh)}")
        con.execute(f"INSERT INTO {theirs} SELECT * FROM {ours}")
        return 0
    if kind == "appended":
        con.execute(f"DELETE FROM {theirs} WHERE batch_id > ?", [since])
        row = con.execute(
            f"INSERT INTO {theirs} SELECT * FROM {ours} WHERE batch_id > ?", [since]
        ).fetchone()
        return int(row[0]) if row else 0
    # Literals, not parameters: DuckDB skips the row groups a constant filter excludes by their
    # min/max statistics (the incremental tables are appended batch after batch).
    newer = f"batch_id > {int(since)}"
    key_match = " AND ".join(f"c.{quote(k)} = t.{quote(k)}" for k in keys)
    con.execute("DROP TABLE IF EXISTS temp.exigo_copy_changes")
    con.execute(f"CREATE TEMP TABLE exigo_copy_changes AS SELECT * FROM {ours} WHERE {newer}")
    row = (
        con.execute("SELECT count(*), min(valid_from) FROM temp.exigo_copy_changes").fetchone()
        if kind == "history"
        else con.execute("SELECT count(*), NULL FROM temp.exigo_copy_changes").fetchone()
    )
    assert row is not None
    opened, earliest = int(row[0]), row[1]
    if not opened:
        con.execute("DROP TABLE temp.exigo_copy_changes")
        return 0
    if kind == "keyed":
        con.execute(
            f"DELETE FROM {theirs} t WHERE EXISTS "
            f"(SELECT 1 FROM temp.exigo_copy_changes c WHERE {key_match})"
        )
    else:  # history: the versions opened, and those they closed (exigo_history_closed_versions)
        con.execute(
            f"""INSERT INTO temp.exigo_copy_changes
            SELECT t.* FROM {ours} t
            WHERE t.batch_id <= {int(since)} AND t.valid_to >= '{earliest.isoformat()}'::TIMESTAMP
              AND EXISTS (SELECT 1 FROM temp.exigo_copy_changes c
                          WHERE {key_match} AND c.valid_from = t.valid_to
                            AND c.{newer})"""
        )
        con.execute(
            f"""DELETE FROM {theirs} t WHERE t.valid_to IS NULL AND EXISTS (
                SELECT 1 FROM temp.exigo_copy_changes c
                WHERE {key_match} AND c.history_version_id = t.history_version_id
                  AND c.batch_id <= {int(since)})"""
        )
    row = con.execute(f"INSERT INTO {theirs} SELECT * FROM temp.exigo_copy_changes").fetchone()
    con.execute("DROP TABLE temp.exigo_copy_changes")
    return int(row[0]) if row else 0


def _kept_by_changes(table: str) -> bool:
    """A table the standby keeps by the batches' changes (by name; `_plan` checks its columns):
    its schema must be the warehouse's, or the standby is rebuilt whole."""
    return table in _HISTORY_KEYS or table in _KEYED or table in _APPENDED


def _plan(table: str, columns: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """How a table's changes are found: history / keyed / appended, or copied whole."""
    names = set(columns)
    keys = _HISTORY_KEYS.get(table)
    if keys and _HISTORY_COLUMNS | set(keys) <= names:
        return "history", keys
    keys = _KEYED.get(table)
    if keys and {"batch_id", *keys} <= names:
        return "keyed", keys
    if table in _APPENDED and "batch_id" in names:
        return "appended", ()
    return "whole", ()


def _drop_tables_gone(con: duckdb.DuckDBPyConnection, tables: Sequence[_Table]) -> None:
    """Tables copied whole that the warehouse no longer has (a batch's landing tables)."""
    present = {(schema, table) for schema, table, _columns, _ddl in tables}
    for schema, table in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?", [_STANDBY]
    ).fetchall():
        if (schema, table) not in present and not _kept_by_changes(table):
            con.execute(f"DROP TABLE {_STANDBY}.{quote(schema)}.{quote(table)}")


def _verify_counts(con: duckdb.DuckDBPyConnection, wh: str, tables: Sequence[_Table]) -> None:
    """Every table kept by its changes holds as many rows as the warehouse's: a standby that
    drifted (a table rewritten outside a batch) is rebuilt rather than published."""
    parts = []
    for schema, table, columns, _ddl in tables:
        if _plan(table, columns)[0] == "whole":
            continue
        name = f"{quote(schema)}.{quote(table)}"
        parts.append(
            f"SELECT {literal(f'{schema}.{table}')}, "
            f"(SELECT count(*) FROM {quote(wh)}.{name}), (SELECT count(*) FROM {_STANDBY}.{name})"
        )
    if not parts:
        return
    for name, ours, theirs in con.execute(" UNION ALL ".join(parts)).fetchall():
        if ours != theirs:
            raise _Rebuild(f"{name} holds {theirs} rows in the copy, {ours} in the warehouse")


def _catalog(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _tables(con: duckdb.DuckDBPyConnection, db: str) -> list[_Table]:
    """(schema, table, columns in order, CREATE TABLE statement) of every table of `db`."""
    rows = con.execute(
        "SELECT t.schema_name, t.table_name, "
        "list(c.column_name ORDER BY c.column_index), any_value(t.sql) "
        "FROM duckdb_tables() t JOIN duckdb_columns() c USING (database_name, schema_name, "
        "table_name) WHERE t.database_name = ? GROUP BY ALL ORDER BY 1, 2",
        [db],
    ).fetchall()
    return [(s, t, list(c), ddl) for s, t, c, ddl in rows]


def _schema(
    con: duckdb.DuckDBPyConnection, *dbs: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What the standby must share with the warehouse to take the batches' changes: the columns
    and constraints of the tables kept by changes, the views, macros and sequences (the tables
    copied whole are created again from the warehouse's statement every time). One list per
    database, in a comparable form."""
    kept = sorted({*_HISTORY_KEYS, *_KEYED, *_APPENDED})
    rows = con.execute(
        """
        SELECT database_name, 'column', schema_name, table_name, column_index::VARCHAR,
               column_name, data_type, is_nullable::VARCHAR, coalesce(column_default, '')
        FROM duckdb_columns()
        WHERE list_contains($dbs, database_name) AND list_contains($kept, table_name)
          AND table_name IN (SELECT table_name FROM duckdb_tables() t
                             WHERE t.database_name = duckdb_columns.database_name
                               AND t.schema_name = duckdb_columns.schema_name)
        UNION ALL
        SELECT database_name, 'constraint', schema_name, table_name, constraint_type,
               constraint_text, '', '', ''
        FROM duckdb_constraints()
        WHERE list_contains($dbs, database_name) AND list_contains($kept, table_name)
        UNION ALL
        SELECT database_name, 'table', schema_name, table_name, '', '', '', '', ''
        FROM duckdb_tables()
        WHERE list_contains($dbs, database_name) AND list_contains($kept, table_name)
        UNION ALL
        SELECT database_name, 'view', schema_name, view_name, sql, '', '', '', ''
        FROM duckdb_views() WHERE list_contains($dbs, database_name) AND NOT internal
        UNION ALL
        SELECT database_name, 'function', schema_name, function_name,
               coalesce(macro_definition, ''), function_type, '', '', ''
        FROM duckdb_functions() WHERE list_contains($dbs, database_name) AND NOT internal
        UNION ALL
        SELECT database_name, 'sequence', schema_name, sequence_name, '', '', '', '', ''
        FROM duckdb_sequences() WHERE list_contains($dbs, database_name)
        ORDER BY ALL
        """,
        {"dbs": list(dbs), "kept": kept},
    ).fetchall()
    first, second = dbs
    return (
        [r[1:] for r in rows if r[0] == first],
        [r[1:] for r in rows if r[0] == second],
    )


def _schema_difference(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]]) -> str:
    new = sorted(set(ours) - set(theirs))
    gone = sorted(set(theirs) - set(ours))
    first = new[0] if new else gone[0]
    kind, schema, name = first[0], first[1], first[2]
    return f"{kind} {schema}.{name} {'in the warehouse only' if new else 'in the copy only'}"


def _last_merged(con: duckdb.DuckDBPyConnection) -> _Merged | None:
    try:
        row = con.execute(
            "SELECT max(batch_id) FROM exigo_sync.batches WHERE status = 'merged'"
        ).fetchone()
    except duckdb.Error:
        return None
    if not row or row[0] is None:
        return None
    return _merged_batch(con, int(row[0]))


def _merged_batch(con: duckdb.DuckDBPyConnection, batch_id: int) -> _Merged | None:
    try:
        row = con.execute(
            "SELECT batch_id, CAST(finished_at AS VARCHAR), dbt_invocation_id "
            "FROM exigo_sync.batches WHERE batch_id = ? AND status = 'merged'",
            [batch_id],
        ).fetchone()
    except duckdb.Error:
        return None
    return _Merged(int(row[0]), row[1], row[2]) if row else None


def _rebuild(
    con: duckdb.DuckDBPyConnection, source: Path, path: Path, seconds: dict[str, float]
) -> int:
    """The standby as a byte copy of the warehouse file: CHECKPOINT (everything in the WAL is
    written into the file and the WAL emptied), then the bytes, into a new file renamed over the
    slot's (a reader holding the old one keeps it). Returns the size."""
    with _timed(seconds, "checkpoint"):
        con.execute("CHECKPOINT")
    wal = Path(f"{source}.wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise AnalyticsCopyError(
            f"{wal} still holds changes after CHECKPOINT; not copying a partial warehouse"
        )
    temp = path.with_name(f".{path.name}.{os.getpid()}{_TEMP_SUFFIX}")
    try:
        size = _copy_bytes(source, temp, seconds)
        Path(f"{path}.wal").unlink(missing_ok=True)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size


def _point(dest: Path, slot: str) -> None:
    """Move the copy's link to `slot`: a new link renamed over the old one (atomic)."""
    link = dest.with_name(f".{dest.name}.{os.getpid()}{_TEMP_SUFFIX}")
    link.unlink(missing_ok=True)
    try:
        os.symlink(Path(slots_dir(dest).name) / slot / dest.name, link)
        os.replace(link, dest)
    except BaseException:
        link.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(path: Path, state: dict[str, Any]) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}{_TEMP_SUFFIX}")
    try:
        with open(temp, "w") as out:
            json.dump(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


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
    """Temporary files a killed publication left next to the destination and in its slots
    (ours only, by name)."""
    patterns = [(dest.parent, f".{dest.name}.*{_TEMP_SUFFIX}")]
    patterns += [(slots_dir(dest), f".*{_TEMP_SUFFIX}")]
    patterns += [(slots_dir(dest) / slot, f".{dest.name}.*{_TEMP_SUFFIX}") for slot in SLOTS]
    for directory, pattern in patterns:
        for stale in directory.glob(pattern):
            if stale.is_symlink() or stale.is_file():
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
