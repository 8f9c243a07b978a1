"""Every SQL statement the Python side runs against the warehouse.

Values are always bound parameters (`?`, understood by duckdb and pyodbc); only identifiers from
the fixed entity catalogue below are formatted in. DML is portable SQL; the DDL has one variant
per engine because `CREATE ... IF NOT EXISTS` is not T-SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from exigo_sync.naming import column_name, entity_name
from exigo_sync.source.catalog import REPLICATED_TABLES


@dataclass(frozen=True)
class Entity:
    name: str  # dbt entity name: customers, orders, ...
    queue_table: str  # queue.<Table>
    keys: tuple[str, ...]  # snake_case key columns in history


ENTITIES: tuple[Entity, ...] = tuple(
    Entity(entity_name(t.name), t.name, tuple(column_name(k) for k in t.key))
    for t in REPLICATED_TABLES.values()
)

# Ledger column holding the row count of each queue table.
ROW_COLUMNS: dict[str, str] = {e.queue_table: f"rows_{e.name}" for e in ENTITIES}

SCHEMA = "exigo_sync"
BATCHES = f"{SCHEMA}.batches"
STATS = f"{SCHEMA}.batch_entity_stats"
LOCK = f"{SCHEMA}.run_lock"

_ROWS_DDL = ",\n    ".join(f"{c} INTEGER" for c in ROW_COLUMNS.values())
_TYPES = {
    "duckdb": {"ts": "TIMESTAMP", "txt": "VARCHAR", "big": "BIGINT"},
    "sqlserver": {"ts": "DATETIME2", "txt": "NVARCHAR(4000)", "big": "BIGINT"},
}


def _tables(t: dict[str, str]) -> dict[str, str]:
    return {
        "batches": f"""(
    batch_id {t["big"]} NOT NULL PRIMARY KEY,
    flow_run_id {t["txt"]},
    target {t["txt"]},
    window_kind {t["txt"]},
    requested_start {t["ts"]},
    refresh_started_at {t["ts"]},
    refresh_finished_at {t["ts"]},
    {_ROWS_DDL},
    status {t["txt"]} NOT NULL,
    dbt_invocation_id {t["txt"]},
    error {t["txt"]},
    started_at {t["ts"]} NOT NULL,
    finished_at {t["ts"]}
)""",
        "batch_entity_stats": f"""(
    batch_id {t["big"]} NOT NULL,
    entity VARCHAR(64) NOT NULL,
    inserted INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    closed INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    ties INTEGER NOT NULL,
    PRIMARY KEY (batch_id, entity)
)""",
        "run_lock": f"""(
    lock_name VARCHAR(200) NOT NULL PRIMARY KEY,
    token VARCHAR(64) NOT NULL,
    flow_run_id {t["txt"]},
    host {t["txt"]},
    pid INTEGER,
    acquired_at {t["ts"]} NOT NULL,
    heartbeat_at {t["ts"]} NOT NULL,
    {_added_columns_ddl("run_lock", t)}
)""",
    }


# Columns added after a table first shipped: new warehouses get them from CREATE TABLE, older
# ones from ensure_schema (ALTER TABLE ADD), so an upgrade needs no manual step.
ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "run_lock": (
        ("process_marker", "txt"),  # tells a live holder from a new process with its old pid
        ("prefect_api", "txt"),  # the Prefect API whose concurrency slot the holder took
        ("prefect_lease_id", "txt"),  # that slot's lease, to return it if the holder dies
        ("released_at", "ts"),  # set instead of deleting the row when the slot leaked
    ),
}


def _added_columns_ddl(table: str, t: dict[str, str]) -> str:
    return ",\n    ".join(f"{name} {t[kind]}" for name, kind in ADDED_COLUMNS[table])


def add_column(engine: str, table: str, column: str) -> str:
    """ALTER TABLE adding one of ADDED_COLUMNS to a warehouse created before it existed."""
    kind = dict(ADDED_COLUMNS[table])[column]
    keyword = "ADD COLUMN" if engine == "duckdb" else "ADD"
    return f"ALTER TABLE {SCHEMA}.{table} {keyword} {column} {_TYPES[engine][kind]}"


TABLE_COLUMNS = """SELECT column_name FROM information_schema.columns
WHERE table_schema = ? AND table_name = ?"""


def ddl(engine: str) -> list[str]:
    """Idempotent DDL for the ledger schema."""
    tables = _tables(_TYPES[engine])
    if engine == "duckdb":
        return [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"] + [
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{name} {body}" for name, body in tables.items()
        ]
    return [
        f"IF SCHEMA_ID('{SCHEMA}') IS NULL EXEC('CREATE SCHEMA {SCHEMA}')",
        *(
            f"IF OBJECT_ID('{SCHEMA}.{name}') IS NULL CREATE TABLE {SCHEMA}.{name} {body}"
            for name, body in tables.items()
        ),
    ]


# --- batches -------------------------------------------------------------------------------

NEXT_BATCH_ID = f"SELECT COALESCE(MAX(batch_id), 0) + 1 FROM {BATCHES}"

INSERT_BATCH = f"""INSERT INTO {BATCHES}
    (batch_id, flow_run_id, target, window_kind, requested_start, status, started_at)
VALUES (?, ?, ?, ?, ?, 'refreshing', ?)"""

MARK_REFRESHED = f"""UPDATE {BATCHES} SET status = 'refreshed',
    refresh_started_at = ?, refresh_finished_at = ?,
    {", ".join(f"{c} = ?" for c in ROW_COLUMNS.values())}
WHERE batch_id = ? AND status = 'refreshing'"""

# Only a batch whose every merge model succeeded gets here (L2).
MARK_MERGED = f"""UPDATE {BATCHES} SET status = 'merged', dbt_invocation_id = ?, finished_at = ?
WHERE batch_id = ? AND status = 'refreshed'"""

MARK_FAILED = f"""UPDATE {BATCHES}
SET status = 'failed', error = ?, finished_at = ?,
    dbt_invocation_id = COALESCE(?, dbt_invocation_id)
WHERE batch_id = ? AND status IN ('refreshing', 'refreshed')"""

# Run while holding the lock: whatever is still in flight belongs to a run that died.
ABANDON_IN_FLIGHT = f"""UPDATE {BATCHES}
SET status = 'failed', error = ?, finished_at = ?
WHERE status IN ('refreshing', 'refreshed')"""

COUNT_IN_FLIGHT = f"SELECT COUNT(*) FROM {BATCHES} WHERE status IN ('refreshing', 'refreshed')"

# The watermark (W1): where the latest merged batch began its refresh, on the source clock.
WATERMARK = f"""SELECT refresh_started_at FROM {BATCHES}
WHERE batch_id = (SELECT MAX(batch_id) FROM {BATCHES} WHERE status = 'merged')"""

BATCH_COLUMNS = (
    "batch_id", "flow_run_id", "target", "window_kind", "requested_start",
    "refresh_started_at", "refresh_finished_at", *ROW_COLUMNS.values(),
    "status", "dbt_invocation_id", "error", "started_at", "finished_at",
)  # fmt: skip

# The last N batches, newest first (no LIMIT/TOP: both dialects differ there).
RECENT_BATCHES = f"""SELECT {", ".join(BATCH_COLUMNS)} FROM {BATCHES}
WHERE batch_id > (SELECT COALESCE(MAX(batch_id), 0) FROM {BATCHES}) - ?
ORDER BY batch_id DESC"""

GET_BATCH = f"SELECT {', '.join(BATCH_COLUMNS)} FROM {BATCHES} WHERE batch_id = ?"

# --- per-entity statistics (L1) ------------------------------------------------------------

DELETE_STATS = f"DELETE FROM {STATS} WHERE batch_id = ?"
INSERT_STATS = f"""INSERT INTO {STATS} (batch_id, entity, inserted, changed, closed, rejected, ties)
VALUES (?, ?, ?, ?, ?, ?, ?)"""
GET_STATS = f"""SELECT entity, inserted, changed, closed, rejected, ties FROM {STATS}
WHERE batch_id = ? ORDER BY entity"""
RECENT_REJECTS = f"""SELECT entity, SUM(rejected) FROM {STATS}
WHERE batch_id > (SELECT COALESCE(MAX(batch_id), 0) FROM {BATCHES}) - ?
GROUP BY entity HAVING SUM(rejected) > 0 ORDER BY entity"""


def version_stats(entity: Entity) -> str:
    """inserted / changed / closed versions batch `?` added to the entity's history.

    inserted = the key's first version; changed = any other live version; closed = deletion
    versions. Parameters: batch_id.
    """
    h = f"exigo_history.{entity.name}_history"
    same_key = " AND ".join(f"p.{k} = h.{k}" for k in entity.keys)
    first = f"NOT EXISTS (SELECT 1 FROM {h} p WHERE {same_key} AND p.valid_from < h.valid_from)"
    deleted = "CAST(h.is_deleted AS INTEGER) = 1"
    return f"""SELECT
    COALESCE(SUM(CASE WHEN NOT ({deleted}) AND {first} THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN NOT ({deleted}) AND NOT {first} THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN {deleted} THEN 1 ELSE 0 END), 0)
FROM {h} h WHERE h.batch_id = ?"""


def tie_stats(entity: Entity) -> str:
    """Ties broken in the batch's staging table (B2). Parameters: batch_id."""
    return f"""SELECT COALESCE(SUM(CAST(is_tie_broken AS INTEGER)), 0)
FROM exigo_staging.stg_exigo__{entity.name} WHERE batch_id = ?"""


# The rejected-rows table belongs to the dbt project, which decides its schema; find it by name
# (INFORMATION_SCHEMA exists in both dialects) rather than hard-coding where it lives.
FIND_REJECTED_ROWS = """SELECT table_schema FROM information_schema.tables
WHERE table_name = 'exigo_rejected_rows' ORDER BY table_schema"""


def reject_stats(schema: str) -> str:
    """Rejected rows per entity of a batch (B1). Parameters: batch_id."""
    return f"""SELECT entity, COUNT(*) FROM {schema}.exigo_rejected_rows
WHERE batch_id = ? GROUP BY entity"""


# --- run lock (R2) -------------------------------------------------------------------------

LOCK_COLUMNS = (
    "token", "flow_run_id", "host", "pid", "process_marker", "acquired_at", "heartbeat_at",
    "prefect_api", "prefect_lease_id", "released_at",
)  # fmt: skip
GET_LOCK = f"SELECT {', '.join(LOCK_COLUMNS)} FROM {LOCK} WHERE lock_name = ?"
INSERT_LOCK = f"""INSERT INTO {LOCK} (lock_name, token, flow_run_id, host, pid, process_marker,
    acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
# Compare-and-swap on the previous token: two contenders cannot both take over a dead lock.
TAKE_OVER_LOCK = f"""UPDATE {LOCK} SET token = ?, flow_run_id = ?, host = ?, pid = ?,
    process_marker = ?, acquired_at = ?, heartbeat_at = ?, prefect_api = NULL,
    prefect_lease_id = NULL, released_at = NULL
WHERE lock_name = ? AND token = ?"""
HEARTBEAT_LOCK = f"UPDATE {LOCK} SET heartbeat_at = ? WHERE lock_name = ? AND token = ?"
# Written before the Prefect slot is requested (lease NULL: "may hold a slot there") and again
# with the lease once granted, so a successor knows what a dead holder may have leaked.
RECORD_LOCK_SLOT = f"""UPDATE {LOCK} SET prefect_api = ?, prefect_lease_id = ?
WHERE lock_name = ? AND token = ?"""
RELEASE_LOCK = f"DELETE FROM {LOCK} WHERE lock_name = ? AND token = ?"
# The row stays, marked released, when the Prefect slot could not be returned: the next run
# takes the row at once and returns the slot the row names.
MARK_LOCK_RELEASED = f"UPDATE {LOCK} SET released_at = ? WHERE lock_name = ? AND token = ?"
