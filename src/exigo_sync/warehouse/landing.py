"""Landing: pin one batch's queue snapshot in the warehouse, with the `dbo` keys the deletion sweep
compares against, the rows of keys back at the source and the lookups. dbt reads only these
copies, so what it merges is exactly what this batch's refresh produced (R3: another consumer's
`queue.Refresh` replaces the shared queue tables at any moment), and the deletion guard and the
history models read the same set of source keys (H9).

Two ways in, one result:
- co-located (the warehouse can read the source where it is): the warehouse copies each table
  itself, `CREATE TABLE ... AS SELECT` from the attached simulator file or `SELECT ... INTO` from
  the sync database on the same SQL Server (`land_in_warehouse`);
- landed (the source is elsewhere): each table is streamed from the source into an
  `<name>__incoming` table of the warehouse (`land_batch`). Into DuckDB as Arrow record batches:
  built by the source's driver where it can (`SourceClient.record_batches`: DuckDB, and
  mssql-python in C++, ARROW_BATCH_ROWS rows at a time), else converted column by column from
  the row tuples of a DB-API cursor (`SourceClient.query`, FETCH_SIZE rows at a time: pyodbc);
  the first way is 9x as fast on a 200k-customer source (BENCHMARKS.md, section 5).
  Into SQL Server as rows, the way the driver in use takes many (`sqlserver.rows`: parameter
  arrays with Microsoft's drivers, multi-row INSERT ... VALUES with FreeTDS).
The flow's process holds one chunk at a time whatever the table's size (a DuckDB warehouse
commits every COMMIT_EVERY_BYTES of it). Only when every table has arrived does one transaction
swap them all in and record the batch in the manifest, so dbt sees either the whole
of this batch's snapshot or the whole of the previous one; a copy that dies part-way leaves
the landing as it was, and the batch merges nothing.

Columns and types are the source's own (read from its information_schema), mapped to the
warehouse engine where it differs (SQL Server -> DuckDB: `catalog.duckdb_type`), less the columns
the sensitive-column policy drops (S2: a secret never enters the warehouse). Before anything is
copied, every table's columns are checked against the policy (`SensitivePolicy.check`): a new
column whose name or type looks sensitive and that the policy does not name stops the batch.

After the swap, `fingerprint` takes each landed queue table's fingerprint (exigo_sync.snapshot),
to compare with the one the refresh took.
"""

from __future__ import annotations

import hashlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exigo_sync.catalog import LOOKUP_TABLES, QUEUE_TABLES, REPLICATED_TABLES, duckdb_type
from exigo_sync.console import DETAIL
from exigo_sync.faults import fault
from exigo_sync.naming import column_name, entity_name
from exigo_sync.policy import SensitivePolicy
from exigo_sync.profiles import Target
from exigo_sync.quoting import bracket as _bracket
from exigo_sync.quoting import literal as _literal
from exigo_sync.quoting import quote as _quote
from exigo_sync.snapshot import TableFingerprint, fingerprint_sql, from_row
from exigo_sync.source import FETCH_SIZE, SourceClient, TransientSourceError
from exigo_sync.topology import Topology
from exigo_sync.warehouse.connection import WarehouseConnection, connected, engine
from exigo_sync.warehouse.ledger import Fence, Ledger, LockLost, utcnow

QUEUE_SCHEMA = "exigo_landing"  # the queue tables, under their own names
DBO_SCHEMA = "exigo_landing_dbo"  # key sets (and lookups) of dbo tables, under their own names
MANIFEST = f"{QUEUE_SCHEMA}.landed_tables"
INCOMING = "__incoming"
PROGRESS_EVERY_ROWS = 100_000
# A DuckDB warehouse commits a landed table whenever this much Arrow data has gone in since the
# last commit (_DuckDbWriter.appending). DuckDB keeps uncommitted rows in memory, past its
# memory_limit (1M rows of Customers, 97 columns: 3.6 GB), and checkpoints at a commit whose WAL
# outgrows 16 MB, so committing every 100k-row chunk rewrote wide tables again and again.
COMMIT_EVERY_BYTES = 256 * 2**20


class LandingError(RuntimeError):
    """A table could not be copied; nothing of this batch was swapped in."""


@dataclass(frozen=True)
class LandingTable:
    source_schema: str  # queue | dbo
    name: str  # the source table
    columns: tuple[str, ...] | None = None  # None: every column
    # A swept entity's reopened keys (H7): the source rows of the keys whose current history
    # version is a deletion but whose key the source has again; landed as `<name>__reopen`.
    reopen: bool = False

    @property
    def landing_schema(self) -> str:
        return QUEUE_SCHEMA if self.source_schema == "queue" else DBO_SCHEMA

    @property
    def landing_name(self) -> str:
        return f"{self.name}__reopen" if self.reopen else self.name

    @property
    def label(self) -> str:
        return f"{self.source_schema}.{self.landing_name}"


@dataclass(frozen=True)
class Column:
    name: str
    warehouse_type: str
    source_type: str = ""  # as the source's information_schema names it (the S2 type check)


def tables_for_batch(swept_entities: Sequence[str]) -> list[LandingTable]:
    """The six queue tables; for each swept entity the keys of its dbo table and then the rows
    of its reopened keys (found with those keys); the (small) lookup tables."""
    swept = [
        table for name, table in REPLICATED_TABLES.items() if entity_name(name) in swept_entities
    ]
    return [
        *(LandingTable("queue", name) for name in QUEUE_TABLES),
        *(LandingTable("dbo", t.name, tuple(t.key)) for t in swept),
        *(LandingTable("dbo", t.name, reopen=True) for t in swept),
        *(LandingTable("dbo", name) for name in LOOKUP_TABLES),
    ]


@dataclass(frozen=True)
class Landing:
    """What a landing put in the warehouse: rows per LandingTable.label, and the fingerprint of
    each landed queue table."""

    rows: dict[str, int]
    fingerprint: dict[str, TableFingerprint]


def land_batch(
    source: SourceClient,
    source_engine: str,
    warehouse: Target,
    batch_id: int,
    tables: Sequence[LandingTable],
    *,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    policy: SensitivePolicy,
    find_missing: bool = False,
    fence: Fence | None = None,
) -> Landing:
    """Stream `tables` from the source for batch `batch_id` (landed topology), without the
    columns `policy` drops; nothing at all when a table has a column the policy must name first.

    find_missing: a `__reopen` table also takes source keys the warehouse never received (a
    complete warehouse's reconciliation, W4), not only keys back after a deletion."""
    target_engine = engine(warehouse)
    landed: dict[str, int] = {}  # rows per LandingTable.label
    read = {t.label: _source_columns(source, source_engine, target_engine, t) for t in tables}
    for table in tables:
        _check_columns(table, [(c.name, c.source_type) for c in read[table.label]], policy)
    with connected(warehouse) as con:
        writer = _WRITERS[target_engine](con)
        as_arrow = writer.takes_arrow and source.reads_arrow  # asked once: it reads the profile
        writer.ensure_schemas()
        for table in tables:
            kept = set(policy.copied(table.name, [c.name for c in read[table.label]]))
            columns = [c for c in read[table.label] if c.name in kept]
            started = time.monotonic()
            writer.create_incoming(table, columns)
            rows = 0
            if table.reopen:
                chunks = _reopened_chunks(source, con, table, columns, find_missing)
            elif as_arrow:
                chunks = _record_batches(source, table, columns)
            else:
                chunks = _chunks(source, table, columns)
            with writer.appending():
                for chunk in chunks:
                    writer.append(table, columns, chunk)
                    before, rows = rows, rows + len(chunk)
                    if rows // PROGRESS_EVERY_ROWS > before // PROGRESS_EVERY_ROWS:
                        logger.info("landing %s: %s rows", table.label, f"{rows:,}")
            landed[table.label] = rows
            fault("during_land")  # a copy that dies part-way (R1 tests)
            logger.info(
                "landed %s: %s rows in %.1fs", table.label, f"{rows:,}",
                time.monotonic() - started, extra=DETAIL,
            )  # fmt: skip
        writer.swap_in(tables, batch_id, landed, fence)
        return Landing(landed, _fingerprint(con, writer))


def pin(
    topology: Topology,
    batch_id: int,
    tables: Sequence[LandingTable],
    *,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    policy: SensitivePolicy,
    find_missing: bool = False,
    fence: Fence | None = None,
) -> Landing:
    """Land `tables` for batch `batch_id` the topology's way: copied by the warehouse itself
    (co-located) or streamed from the source (landed); `policy` decides which columns."""
    if topology.landed:
        client = topology.source_client()
        try:
            return land_batch(
                client, topology.source.type, topology.warehouse, batch_id, tables,
                logger=logger, policy=policy, find_missing=find_missing, fence=fence,
            )  # fmt: skip
        finally:
            client.close()
    where = engine(topology.warehouse)
    location = str(topology.source_path()) if where == "duckdb" else topology.source_database
    if not location:
        raise LandingError(f"no sync database named for {topology.describe()}")
    return land_in_warehouse(
        SourceInWarehouse(where, location), topology.warehouse, batch_id, tables,
        logger=logger, policy=policy, find_missing=find_missing, fence=fence,
    )  # fmt: skip


@dataclass(frozen=True)
class SourceInWarehouse:
    """Where the warehouse itself reads the source (co-located topology): the simulator file a
    DuckDB warehouse attaches, or the sync database on the SQL Server warehouse's server."""

    engine: str  # the warehouse's: duckdb | sqlserver
    location: str  # DuckDB: the simulator file; SQL Server: the sync database's name

    def relation(self, schema: str, table: str) -> str:
        if self.engine == "duckdb":
            return f"{ATTACHED_SOURCE}.{_quote(schema)}.{_quote(table)}"
        return f"{_bracket(self.location)}.{_bracket(schema)}.{_bracket(table)}"


# The alias under which a DuckDB warehouse attaches the simulator file for the copy.
ATTACHED_SOURCE = "exigo_pinned_source"


def land_in_warehouse(
    source: SourceInWarehouse,
    warehouse: Target,
    batch_id: int,
    tables: Sequence[LandingTable],
    *,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    policy: SensitivePolicy,
    find_missing: bool = False,
    fence: Fence | None = None,
) -> Landing:
    """Copy `tables` inside the warehouse, from the source it can read (co-located topology):
    set-based, nothing passes through this process; without the columns `policy` drops, and
    nothing at all when a table has a column the policy must name first."""
    with connected(warehouse) as con:
        writer = _WRITERS[engine(warehouse)](con)
        with _attached(con, source):
            read = {}
            for table in tables:
                _require_source_table(con, source, table)
                read[table.label] = _in_warehouse_columns(con, source, table)
                _check_columns(table, read[table.label], policy)
            writer.ensure_schemas()
            landed: dict[str, int] = {}
            for table in tables:
                started = time.monotonic()
                relation = source.relation(table.source_schema, table.name)
                wanted = table.columns or tuple(
                    policy.copied(table.name, [name for name, _ in read[table.label]])
                )
                select = _in_warehouse_select(con, source, table, relation, wanted, find_missing)
                landed[table.label] = writer.create_incoming_as(table, select)
                fault("during_land")
                logger.info(
                    "pinned %s: %s rows in %.1fs", table.label, f"{landed[table.label]:,}",
                    time.monotonic() - started, extra=DETAIL,
                )  # fmt: skip
        writer.swap_in(tables, batch_id, landed, fence)
        return Landing(landed, _fingerprint(con, writer))


@contextmanager
def _attached(con: WarehouseConnection, source: SourceInWarehouse) -> Iterator[None]:
    """DuckDB: the simulator file attached read-only for the copy, detached afterwards. Another
    process writing it (a consumer's queue.Refresh) makes this transient (B5 retries)."""
    if source.engine != "duckdb":
        yield
        return
    import duckdb

    try:
        con.execute(f"ATTACH {_literal(source.location)} AS {ATTACHED_SOURCE} (READ_ONLY)")
    except duckdb.Error as exc:
        text = str(exc).strip().splitlines()[0]
        raise TransientSourceError(
            f"{source.location}: could not attach the source: {text}"
        ) from None
    try:
        yield
    finally:
        with suppress(Exception):
            con.execute(f"DETACH {ATTACHED_SOURCE}")


def _require_source_table(
    con: WarehouseConnection, source: SourceInWarehouse, table: LandingTable
) -> None:
    """B4: a missing source table stops the batch here, naming it, before anything is copied."""
    if source.engine == "duckdb":
        (found,) = con.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
            [ATTACHED_SOURCE, table.source_schema, table.name],
        ).fetchone()
    else:
        name = f"{_bracket(source.location)}.{_bracket(table.source_schema)}.{_bracket(table.name)}"
        (object_id,) = con.execute("SELECT OBJECT_ID(?)", [name]).fetchone()
        found = object_id is not None
    if not found:
        raise LandingError(
            f"source table {table.source_schema}.{table.name} is missing (B4); nothing was "
            "landed and nothing merged"
        )


def _check_columns(
    table: LandingTable, columns: Sequence[tuple[str, str]], policy: SensitivePolicy
) -> None:
    """Before anything is copied, the source table's (name, type) columns: B4, a queue table
    without a key or version-time column cannot be merged (nor fingerprinted), named here;
    S2, a column the policy must name first stops the batch (SensitivePolicy.check)."""
    documented = REPLICATED_TABLES.get(table.name)
    if table.source_schema == "queue" and documented is not None:
        have = {name.lower() for name, _ in columns}
        for column in [*documented.key, *filter(None, [documented.version_time_column])]:
            if column.lower() not in have:
                raise LandingError(
                    f"required column {column} is missing from queue table queue.{table.name} "
                    "(B4); nothing was landed and nothing merged"
                )
    policy.check(table.name, columns, table.label)


@dataclass(frozen=True)
class _Select:
    """A SELECT in two parts, so each engine can put its own `INTO` between them."""

    columns: str
    rest: str  # FROM ... [WHERE ...]


def _in_warehouse_columns(
    con: WarehouseConnection, source: SourceInWarehouse, table: LandingTable
) -> list[tuple[str, str]]:
    """(name, type) of every column of the source table, in order, as the warehouse reads it."""
    if source.engine == "duckdb":
        sql = (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position"
        )
        params = [ATTACHED_SOURCE, table.source_schema, table.name]
    else:
        sql = (
            f"SELECT COLUMN_NAME, DATA_TYPE FROM {_bracket(source.location)}.INFORMATION_SCHEMA."
            "COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
        )
        params = [table.source_schema, table.name]
    return [(str(name), str(data_type)) for name, data_type in con.execute(sql, params).fetchall()]


def _in_warehouse_select(
    con: WarehouseConnection, source: SourceInWarehouse, table: LandingTable, relation: str,
    columns: Sequence[str], find_missing: bool,
) -> _Select:  # fmt: skip
    if table.reopen:
        keys = REPLICATED_TABLES[table.name].key
        selected = ", ".join(f"d.{_quote(c)}" for c in columns)
        candidates = _reopen_candidates_sql(con, table.name, keys, find_missing)
        if candidates is None:
            return _Select(selected, f"FROM {relation} d WHERE 1 = 0")
        match = " AND ".join(f"c.{_quote(k)} = d.{_quote(k)}" for k in keys)
        return _Select(
            selected,
            f"FROM {relation} d WHERE EXISTS (SELECT 1 FROM ({candidates}) c WHERE {match})",
        )
    return _Select(", ".join(_quote(c) for c in columns), f"FROM {relation}")


def data_high_water(warehouse: Target, not_after: datetime) -> datetime | None:
    """The latest version time in the pinned queue tables that is not after `not_after` (W1:
    where the data's clock stood at the refresh; a stamp beyond the future tolerance is not a
    reading of it, W4). None when the snapshot holds no dated row."""
    latest: list[datetime] = []
    with connected(warehouse) as con:
        writer = _WRITERS[engine(warehouse)](con)
        for table in QUEUE_TABLES:
            column = REPLICATED_TABLES[table].version_time_column
            if column is None:
                continue
            (value,) = con.execute(
                f"SELECT MAX({writer.quote(column)}) FROM {QUEUE_SCHEMA}.{writer.quote(table)} "
                f"WHERE {writer.quote(column)} <= ?",
                [not_after],
            ).fetchone()
            if value is not None:
                latest.append(value.replace(tzinfo=None))
    return max(latest) if latest else None


def lookups_digest(con: WarehouseConnection) -> str:
    """A digest of the lookups the landing holds now: each one's columns (names and types, in
    order) and every row, in key order. Equal digests: the same lookups, value for value."""
    digest = hashlib.sha256()
    writer = _WRITERS[con.engine](con)
    for name, table in LOOKUP_TABLES.items():
        keys = ", ".join(writer.quote(k) for k in table.key)
        cursor = con.execute(f"SELECT * FROM {DBO_SCHEMA}.{writer.quote(name)} ORDER BY {keys}")
        columns = [(d[0], str(d[1])) for d in cursor.description]
        digest.update(repr((name, columns)).encode())
        for row in cursor.fetchall():
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def fingerprint(warehouse: Target) -> dict[str, TableFingerprint]:
    """The fingerprint of each queue table the landing holds now."""
    with connected(warehouse) as con:
        return _fingerprint(con, _WRITERS[engine(warehouse)](con))


def _fingerprint(con: WarehouseConnection, writer: _Writer) -> dict[str, TableFingerprint]:
    return {
        table: from_row(
            con.execute(
                fingerprint_sql(table, f"{QUEUE_SCHEMA}.{writer.quote(table)}", writer.quote)
            ).fetchone()
        )
        for table in QUEUE_TABLES
    }


def landed_batch(warehouse: Target) -> int | None:
    """The batch whose snapshot the landing holds now (None before the first landing)."""
    with connected(warehouse) as con:
        try:
            row = con.execute(f"SELECT MAX(batch_id) FROM {MANIFEST}").fetchone()
        except Exception:
            return None
    return int(row[0]) if row and row[0] is not None else None


# --- reading the source --------------------------------------------------------------------

_COLUMNS_SQL = {
    "sqlserver": """SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION,
    NUMERIC_SCALE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION""",
    "duckdb": """SELECT column_name, data_type, NULL, NULL, NULL FROM information_schema.columns
WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?
ORDER BY ordinal_position""",
}


def _sqlserver_type(data_type: str, length: Any, precision: Any, scale: Any) -> str:
    t = data_type.lower()
    if t in ("nvarchar", "varchar", "nchar", "char", "varbinary", "binary"):
        return f"{t}({'max' if length in (-1, None) else int(length)})"
    if t in ("decimal", "numeric"):
        return f"{t}({int(precision)},{int(scale)})"
    return t


def _source_columns(
    source: SourceClient, source_engine: str, target_engine: str, table: LandingTable
) -> list[Column]:
    with source.query(_COLUMNS_SQL[source_engine], [table.source_schema, table.name]) as cur:
        rows = cur.fetchall()
    if not rows:
        raise LandingError(
            f"source table {table.source_schema}.{table.name} is missing (B4); nothing was landed"
        )
    found = {}
    for name, data_type, length, precision, scale in rows:
        source_type = (
            _sqlserver_type(data_type, length, precision, scale)
            if source_engine == "sqlserver"
            else str(data_type)
        )
        found[str(name)] = (
            _warehouse_type(
                source_engine, target_engine, source_type, f"{table.source_schema}.{table.name}",
                str(name),
            ),
            source_type,
        )  # fmt: skip
    wanted = table.columns or tuple(found)
    missing = [c for c in wanted if c not in found]
    if missing:
        raise LandingError(
            f"source table {table.source_schema}.{table.name} has no column "
            f"{', '.join(missing)} (B4); nothing was landed"
        )
    return [Column(c, *found[c]) for c in wanted]


def _warehouse_type(source_engine: str, target_engine: str, source_type: str, table: str,
                    column: str) -> str:  # fmt: skip
    if source_engine == target_engine:
        return source_type
    if (source_engine, target_engine) == ("sqlserver", "duckdb"):
        try:
            return duckdb_type(source_type)
        except ValueError:
            raise LandingError(
                f"source column {table}.{column} has type {source_type}, which exigo-sync "
                "cannot land in DuckDB; nothing was landed"
            ) from None
    raise LandingError(f"cannot land a {source_engine} source in a {target_engine} warehouse")


def _select(table: LandingTable, columns: Sequence[Column]) -> str:
    # Identifiers come from the catalogue and the source's own information_schema (quoted).
    select = ", ".join(_quote(c.name) for c in columns)
    return f"SELECT {select} FROM {_quote(table.source_schema)}.{_quote(table.name)}"


def _chunks(
    source: SourceClient, table: LandingTable, columns: Sequence[Column]
) -> Iterator[list[tuple]]:
    with source.query(_select(table, columns)) as cur:
        while rows := cur.fetchmany(FETCH_SIZE):
            yield [tuple(r) for r in rows]


def _record_batches(
    source: SourceClient, table: LandingTable, columns: Sequence[Column]
) -> Iterator[Any]:
    """The table as Arrow record batches built by the source's driver (`reads_arrow`)."""
    with source.record_batches(_select(table, columns)) as batches:
        yield from batches


# Keys per source query when reading reopened rows by key (SQL Server takes 2,100 parameters).
_KEYS_PER_QUERY = 500


def _reopened_chunks(
    source: SourceClient, warehouse: WarehouseConnection, table: LandingTable,
    columns: Sequence[Column], find_missing: bool,
) -> Iterator[list[tuple]]:  # fmt: skip
    """The source rows of the keys whose current history version is a deletion and which the
    source has again (found with the keys this landing just copied); with `find_missing`, also
    of the keys the warehouse never received."""
    keys = REPLICATED_TABLES[table.name].key
    sql = _reopen_candidates_sql(warehouse, table.name, keys, find_missing)
    candidates = [tuple(r) for r in warehouse.execute(sql).fetchall()] if sql else []
    for start in range(0, len(candidates), _KEYS_PER_QUERY):
        part = candidates[start : start + _KEYS_PER_QUERY]
        match = " AND ".join(f"{_quote(k)} = ?" for k in keys)
        where = " OR ".join(f"({match})" for _ in part)
        params = [value for key in part for value in key]
        with source.query(f"{_select(table, columns)} WHERE {where}", params) as cur:
            while rows := cur.fetchmany(FETCH_SIZE):
                yield [tuple(r) for r in rows]


def _reopen_candidates_sql(
    warehouse: WarehouseConnection, table: str, keys: Sequence[str], find_missing: bool
) -> str | None:
    """The source keys (landed a moment ago in `<table>__incoming`) to take whole rows of: a key
    whose current history version is a deletion (back at the source, H7), and with
    `find_missing` a key history has no version of at all (never received, W4); never a key
    this batch's queue copy carries. None before the entity's first history build."""
    history_name = f"{entity_name(table)}_history"
    exists = warehouse.execute(
        "SELECT COUNT(*) FROM information_schema.tables "
        "WHERE table_schema = 'exigo_history' AND table_name = ?",
        [history_name],
    ).fetchone()
    if not exists or not exists[0]:
        return None
    history = f"exigo_history.{_quote(history_name)}"
    at_source = f"{DBO_SCHEMA}.{_quote(table + INCOMING)}"
    in_batch = f"{QUEUE_SCHEMA}.{_quote(table + INCOMING)}"
    match_history = " AND ".join(f"h.{_quote(column_name(k))} = k.{_quote(k)}" for k in keys)
    match_batch = " AND ".join(f"q.{_quote(k)} = k.{_quote(k)}" for k in keys)
    deleted = (
        f"EXISTS (SELECT 1 FROM {history} h WHERE {match_history} "
        "AND CAST(h.is_current AS INTEGER) = 1 AND CAST(h.is_deleted AS INTEGER) = 1)"
    )
    wanted = deleted
    if find_missing:
        wanted = f"({deleted} OR NOT EXISTS (SELECT 1 FROM {history} h WHERE {match_history}))"
    return (
        f"SELECT {', '.join('k.' + _quote(k) for k in keys)} FROM {at_source} k "
        f"WHERE {wanted} AND NOT EXISTS (SELECT 1 FROM {in_batch} q WHERE {match_batch})"
    )


# --- writing the warehouse -----------------------------------------------------------------


class _Writer(ABC):
    """How one warehouse engine receives a landing: schemas, an incoming table per source
    table, chunks appended, and one transaction swapping every table in."""

    def __init__(self, con: WarehouseConnection) -> None:
        self.con = con

    @abstractmethod
    def ensure_schemas(self) -> None: ...

    @abstractmethod
    def create_incoming(self, table: LandingTable, columns: Sequence[Column]) -> None: ...

    # Whether `append` takes Arrow record batches as well as rows.
    takes_arrow = False

    def appending(self) -> AbstractContextManager[None]:
        """Around one table's appends."""
        return nullcontext()

    @abstractmethod
    def append(self, table: LandingTable, columns: Sequence[Column], rows: Any) -> None:
        """A chunk into the incoming table: a list of row tuples, or (when `takes_arrow`) an
        Arrow record batch."""

    @abstractmethod
    def create_incoming_as(self, table: LandingTable, select: _Select) -> int:
        """The incoming table made from `select`, inside the warehouse; returns its rows."""

    @abstractmethod
    def swap_in(
        self, tables: Sequence[LandingTable], batch_id: int, landed: dict[str, int],
        fence: Fence | None = None,
    ) -> None:  # fmt: skip
        """Every incoming table in, in one transaction; nothing when `fence` (the run's lock)
        is no longer held (R2: a run that lost its lock must not replace the landing of the run
        that took it over)."""

    def _require_fence(self, fence: Fence | None) -> None:
        if fence is not None and not Ledger(self.con, fence=fence).holds_lock():
            raise LockLost(
                f"this run lost the lock '{fence.lock_name}' to another run; its copy is not "
                "swapped in (R2)"
            )

    @staticmethod
    @abstractmethod
    def quote(name: str) -> str:
        """A column or table name, quoted for this engine."""

    def _count(self, table: LandingTable, suffix: str = "") -> int:
        (rows,) = self.con.execute(f"SELECT COUNT(*) FROM {self._name(table, suffix)}").fetchone()
        return int(rows)

    @staticmethod
    def _name(table: LandingTable, suffix: str = "") -> str:
        return f"{table.landing_schema}.{_quote(table.landing_name + suffix)}"

    def _record(self, tables: Sequence[LandingTable], batch_id: int, landed: dict[str, int],
                now: datetime) -> None:  # fmt: skip
        self.con.execute(f"DELETE FROM {MANIFEST}")
        for t in tables:
            self.con.execute(
                f"INSERT INTO {MANIFEST} (table_name, batch_id, row_count, landed_at) "
                "VALUES (?, ?, ?, ?)",
                [f"{t.landing_schema}.{t.landing_name}", batch_id, landed[t.label], now],
            )  # fmt: skip


class _DuckDbWriter(_Writer):
    """Arrow record batches into DuckDB (no per-row Python on the DuckDB side)."""

    def ensure_schemas(self) -> None:
        for schema in (QUEUE_SCHEMA, DBO_SCHEMA):
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {MANIFEST} (table_name VARCHAR PRIMARY KEY, "
            "batch_id BIGINT NOT NULL, row_count BIGINT NOT NULL, landed_at TIMESTAMP NOT NULL)"
        )

    def create_incoming(self, table: LandingTable, columns: Sequence[Column]) -> None:
        body = ", ".join(f"{_quote(c.name)} {c.warehouse_type}" for c in columns)
        self.con.execute(f"CREATE OR REPLACE TABLE {self._name(table, INCOMING)} ({body})")

    def create_incoming_as(self, table: LandingTable, select: _Select) -> int:
        name = self._name(table, INCOMING)
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {select.columns} {select.rest}")
        return self._count(table, INCOMING)

    quote = staticmethod(_quote)
    takes_arrow = True

    @contextmanager
    def appending(self) -> Iterator[None]:
        """A table's chunks committed COMMIT_EVERY_BYTES of Arrow data at a time, not chunk by
        chunk (a 1M-row Orders took 16.6 s committed by the 100k-row chunk) nor in one
        transaction (9.6 GB landing a 1M-customer source). The table is scratch until the swap:
        a landing that dies part-way leaves it to the next landing's CREATE OR REPLACE."""
        raw = self.con.raw  # type: ignore[attr-defined]
        self._uncommitted = 0
        raw.begin()
        try:
            yield
        except BaseException:
            with suppress(Exception):  # a failed commit leaves no transaction: the error stays
                raw.rollback()
            raise
        finally:
            self._uncommitted = None
        raw.commit()

    # Arrow bytes appended since the last commit; None outside `appending` (each statement
    # commits).
    _uncommitted: int | None = None

    def _committing(self, nbytes: int) -> None:
        if self._uncommitted is None:
            return
        self._uncommitted += nbytes
        if self._uncommitted >= COMMIT_EVERY_BYTES:
            raw = self.con.raw  # type: ignore[attr-defined]
            raw.commit()
            raw.begin()
            self._uncommitted = 0

    def append(self, table: LandingTable, columns: Sequence[Column], rows: Any) -> None:
        """Rows (converted to Arrow column by column) or a record batch, inserted in one
        statement; DuckDB casts each column to the incoming table's type, and a value it cannot
        cast stops the landing with the column named."""
        import duckdb
        import pyarrow as pa

        if isinstance(rows, pa.RecordBatch):
            chunk = rows
        else:
            arrays = [
                _arrow_array(values, c.warehouse_type, _column_label(table, c))
                for values, c in zip(zip(*rows, strict=True), columns, strict=True)
            ]
            chunk = pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])
        raw = self.con.raw  # type: ignore[attr-defined]
        raw.register(_CHUNK, chunk)
        try:
            raw.execute(f"INSERT INTO {self._name(table, INCOMING)} SELECT * FROM {_CHUNK}")
        except duckdb.Error as exc:
            if self._uncommitted is not None:
                # The failed insert aborted the transaction, and the chunk's registration with
                # it: diagnose outside any (the landing fails whatever the diagnosis finds).
                raw.rollback()
                raw.register(_CHUNK, chunk)
            raise LandingError(_cast_failure(raw, table, columns, exc)) from None
        finally:
            raw.unregister(_CHUNK)
        self._committing(chunk.nbytes)

    def swap_in(
        self, tables: Sequence[LandingTable], batch_id: int, landed: dict[str, int],
        fence: Fence | None = None,
    ) -> None:  # fmt: skip
        with self.con.transaction():
            self._require_fence(fence)
            for t in tables:
                self.con.execute(f"DROP TABLE IF EXISTS {self._name(t)}")
                self.con.execute(
                    f"ALTER TABLE {self._name(t, INCOMING)} RENAME TO {_quote(t.landing_name)}"
                )
            self._record(tables, batch_id, landed, utcnow())


_CHUNK = "exigo_landing_chunk"


def _cast_failure(raw: Any, table: LandingTable, columns: Sequence[Column], exc: Exception) -> str:
    """What stopped a chunk's insert, naming the first column whose values DuckDB cannot cast
    to the incoming table's type (found by casting the chunk's columns one at a time)."""
    text = str(exc).strip().splitlines()[0]
    for c in columns:
        try:
            raw.execute(f"SELECT CAST({_quote(c.name)} AS {c.warehouse_type}) FROM {_CHUNK}")
        except Exception as column_exc:
            text = str(column_exc).strip().splitlines()[0]
            return (
                f"source column {_column_label(table, c)} has a value that does not fit "
                f"{c.warehouse_type} ({text}); nothing of this batch was landed"
            )
    return f"landing {table.label} failed ({text}); nothing of this batch was landed"


def _column_label(table: LandingTable, column: Column) -> str:
    return f"{table.source_schema}.{table.name}.{column.name}"


def _arrow_array(values: Sequence[Any], duckdb_type_name: str, column: str) -> Any:
    """One column as an Arrow array of the type DuckDB will store (strings for UUIDs: DuckDB
    casts them on insert)."""
    import pyarrow as pa

    try:
        return _typed_array(values, duckdb_type_name)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise LandingError(
            f"source column {column} has a value that does not fit {duckdb_type_name} "
            f"({exc}); nothing of this batch was landed"
        ) from None


def _typed_array(values: Sequence[Any], duckdb_type_name: str) -> Any:
    import pyarrow as pa

    t = duckdb_type_name.upper()
    if t.startswith("DECIMAL"):
        precision, scale = (int(x) for x in t[t.index("(") + 1 : t.index(")")].split(","))
        return pa.array(values, type=pa.decimal128(precision, scale))
    arrow_type = _ARROW_TYPES.get(t.split("(")[0])
    if arrow_type is None:
        return pa.array(values)
    if arrow_type == "string":
        return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values],
                        type=pa.string())  # fmt: skip
    return pa.array(values, type=getattr(pa, arrow_type)())


_ARROW_TYPES = {
    "INTEGER": "int32", "BIGINT": "int64", "SMALLINT": "int16", "TINYINT": "int8",
    "UTINYINT": "uint8", "BOOLEAN": "bool_", "VARCHAR": "string", "UUID": "string",
    "DOUBLE": "float64", "FLOAT": "float32", "BLOB": "binary", "DATE": "date32",
}  # fmt: skip
# TIMESTAMP / TIME: pa.array infers microsecond precision from Python datetimes.


class _SqlServerWriter(_Writer):
    """Rows into SQL Server the way the driver in use takes many rows (`sqlserver.rows`)."""

    def ensure_schemas(self) -> None:
        for schema in (QUEUE_SCHEMA, DBO_SCHEMA):
            self.con.execute(f"IF SCHEMA_ID('{schema}') IS NULL EXEC('CREATE SCHEMA {schema}')")
        self.con.execute(
            f"IF OBJECT_ID('{MANIFEST}') IS NULL CREATE TABLE {MANIFEST} "
            "(table_name NVARCHAR(300) NOT NULL PRIMARY KEY, batch_id BIGINT NOT NULL, "
            "row_count BIGINT NOT NULL, landed_at DATETIME2 NOT NULL)"
        )

    def create_incoming(self, table: LandingTable, columns: Sequence[Column]) -> None:
        name = self._name(table, INCOMING)
        body = ", ".join(f"{_quote(c.name)} {c.warehouse_type}" for c in columns)
        self.con.execute(f"IF OBJECT_ID('{name}') IS NOT NULL DROP TABLE {name}")
        self.con.execute(f"CREATE TABLE {name} ({body})")

    def create_incoming_as(self, table: LandingTable, select: _Select) -> int:
        name = self._name(table, INCOMING)
        self.con.execute(f"IF OBJECT_ID('{name}') IS NOT NULL DROP TABLE {name}")
        self.con.execute(f"SELECT {select.columns} INTO {name} {select.rest}")
        return self._count(table, INCOMING)

    quote = staticmethod(_quote)

    def append(self, table: LandingTable, columns: Sequence[Column], rows: list[tuple]) -> None:
        self.con.insert_rows(  # type: ignore[attr-defined]
            self._name(table, INCOMING), [c.warehouse_type for c in columns], rows
        )

    def swap_in(
        self, tables: Sequence[LandingTable], batch_id: int, landed: dict[str, int],
        fence: Fence | None = None,
    ) -> None:  # fmt: skip
        with self.con.transaction():
            self._require_fence(fence)
            for t in tables:
                final = self._name(t)
                self.con.execute(f"IF OBJECT_ID('{final}') IS NOT NULL DROP TABLE {final}")
                self.con.execute(
                    "EXEC sp_rename ?, ?, 'OBJECT'",
                    [f"{t.landing_schema}.{t.landing_name}{INCOMING}", t.landing_name],
                )
            self._record(tables, batch_id, landed, utcnow())


_WRITERS: dict[str, type[_Writer]] = {"duckdb": _DuckDbWriter, "sqlserver": _SqlServerWriter}
