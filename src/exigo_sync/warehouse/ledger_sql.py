"""Every SQL statement the Python side runs against the warehouse.

Values are always bound parameters (`?`, understood by duckdb and pyodbc); only identifiers from
the fixed entity catalogue (`exigo_sync.catalog`) are formatted in as they are, and a name read
from the warehouse's catalogue (the schema dbt put a model in) only quoted
(`exigo_sync.quoting`). DML is portable SQL; the DDL has one variant per engine because
`CREATE ... IF NOT EXISTS` is not T-SQL.
"""

from __future__ import annotations

from exigo_sync.catalog import REPLICATED_ENTITIES, Entity
from exigo_sync.quoting import quote

# Ledger column holding the row count of each queue table.
ROW_COLUMNS: dict[str, str] = {e.table: f"rows_{e.name}" for e in REPLICATED_ENTITIES}

SCHEMA = "exigo_sync"
BATCHES = f"{SCHEMA}.batches"
STATS = f"{SCHEMA}.batch_entity_stats"
LOCK = f"{SCHEMA}.run_lock"

_ROWS_DDL = ",\n    ".join(f"{c} INTEGER" for c in ROW_COLUMNS.values())
_TYPES = {
    "duckdb": {"ts": "TIMESTAMP", "txt": "VARCHAR", "big": "BIGINT", "int": "INTEGER"},
    "sqlserver": {"ts": "DATETIME2", "txt": "NVARCHAR(4000)", "big": "BIGINT", "int": "INTEGER"},
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
    finished_at {t["ts"]},
    {_added_columns_ddl("batches", t)}
)""",
        "batch_entity_stats": f"""(
    batch_id {t["big"]} NOT NULL,
    entity VARCHAR(64) NOT NULL,
    inserted INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    closed INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    ties INTEGER NOT NULL,
    {_added_columns_ddl("batch_entity_stats", t)},
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
    "batches": (
        ("reconciled", "int"),  # 1: a reconciliation run (every entity's keys swept, H7)
        # W1, the data's clock: the server's local clock minus its UTC clock at the refresh,
        # the latest stamp (not beyond the future tolerance) the pinned snapshot held, and where
        # the next window resumes (the earlier of refresh_started_at and data_high_water).
        ("utc_offset_seconds", "big"),
        ("data_high_water", "ts"),
        ("resume_at", "ts"),
        # The parts of a batch's build that the next batch may leave out (FINGERPRINTS): the
        # views it recreated, the lookups it merged. `pending` from before its dbt build until it
        # is merged, then the fingerprint of what it built them from.
        ("views_fingerprint", "txt"),
        ("lookups_fingerprint", "txt"),
    ),
    "batch_entity_stats": (
        ("reopened", "int"),  # keys back at the source after a deletion version (H7)
        ("live_keys", "big"),  # swept entities: live keys before the batch (H9's base)
        ("source_keys", "big"),  # swept entities: keys the source returned
        ("missing_keys", "big"),  # swept entities: live keys gone at the source (deleted)
    ),
    "run_lock": (
        ("process_marker", "txt"),  # tells a live holder from a new process with its old pid
        ("prefect_api", "txt"),  # the Prefect API whose concurrency slot the holder took
        ("prefect_lease_id", "txt"),  # that slot's lease, to return it if the holder dies
        ("released_at", "ts"),  # set instead of deleting the row when the slot leaked
        # hostname + machine id + pid namespace: two containers sharing a hostname are two hosts
        ("host_id", "txt"),
    ),
}


def _added_columns_ddl(table: str, t: dict[str, str]) -> str:
    return ",\n    ".join(f"{name} {t[kind]}" for name, kind in ADDED_COLUMNS[table])


def add_column(engine: str, table: str, column: str) -> str:
    """ALTER TABLE adding one of ADDED_COLUMNS to a warehouse created before it existed."""
    kind = dict(ADDED_COLUMNS[table])[column]
    keyword = "ADD COLUMN" if engine == "duckdb" else "ADD"
    return f"ALTER TABLE {SCHEMA}.{table} {keyword} {column} {_TYPES[engine][kind]}"


# Every column of the ledger's tables, in one query (INFORMATION_SCHEMA exists in both engines).
LEDGER_COLUMNS = """SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = ?"""


def expected_columns() -> dict[str, set[str]]:
    """The columns each ledger table has once its schema is up to date (lower case)."""
    out = {}
    for name, body in _tables(_TYPES["duckdb"]).items():
        declared = {
            line.strip().split()[0].lower()
            for line in body.strip("()\n").splitlines()
            if line.strip() and not line.strip().upper().startswith("PRIMARY KEY")
        }
        out[name] = declared
    return out


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


# --- fencing (R2) ----------------------------------------------------------------------------

# A write made on behalf of a lock holder goes through only while it still holds the lock: a
# holder that was paused and taken over cannot write. Parameters: lock_name, token.
FENCE = f"""EXISTS (SELECT 1 FROM {LOCK} fence
    WHERE fence.lock_name = ? AND fence.token = ? AND fence.released_at IS NULL)"""


def fenced(statement: str) -> str:
    """`statement` (an UPDATE ... WHERE ..., or an INSERT ... SELECT ... WHERE ...) made
    conditional on the lock; append the lock name and token to its parameters."""
    return f"{statement}\n  AND {FENCE}"


# --- batches -------------------------------------------------------------------------------

NEXT_BATCH_ID = f"SELECT COALESCE(MAX(batch_id), 0) + 1 FROM {BATCHES}"

# INSERT ... SELECT so that the fence can make it conditional (fenced()).
INSERT_BATCH = f"""INSERT INTO {BATCHES}
    (batch_id, flow_run_id, target, window_kind, requested_start, status, started_at, reconciled)
SELECT ?, ?, ?, ?, ?, 'refreshing', ?, ?
WHERE 1 = 1"""

MARK_REFRESHED = f"""UPDATE {BATCHES} SET status = 'refreshed',
    refresh_started_at = ?, refresh_finished_at = ?, utc_offset_seconds = ?,
    {", ".join(f"{c} = ?" for c in ROW_COLUMNS.values())}
WHERE batch_id = ? AND status IN ('refreshing', 'refreshed')"""

# Only a batch whose every merge model succeeded gets here (L2).
MARK_MERGED = f"""UPDATE {BATCHES} SET status = 'merged', dbt_invocation_id = ?, finished_at = ?
WHERE batch_id = ? AND status = 'refreshed'"""

# What a batch records of the parts of its build the next batch may leave out, by part: the
# views (exigo_sync.view_definitions) and the lookups (exigo_sync.lookup_contents).
FINGERPRINTS = {"views": "views_fingerprint", "lookups": "lookups_fingerprint"}
PENDING = "pending"


def mark_fingerprint(part: str) -> str:
    """Record a batch's fingerprint of `part`. Parameters: fingerprint, batch_id."""
    return f"UPDATE {BATCHES} SET {FINGERPRINTS[part]} = ? WHERE batch_id = ?"


def last_fingerprint(part: str) -> str:
    """`part` as the last batch that built it left it (`pending`: it was not merged)."""
    column = FINGERPRINTS[part]
    return f"""SELECT {column} FROM {BATCHES}
WHERE batch_id = (SELECT max(batch_id) FROM {BATCHES} WHERE {column} IS NOT NULL)"""


_PRESENT_VIEWS = """SELECT table_catalog, table_schema, table_name FROM information_schema.tables
WHERE table_type = 'VIEW' AND table_schema IN ({schemas})"""


def present_views(schema_count: int) -> str:
    """The views in `schema_count` schemas (bound parameters): (database, schema, name)."""
    return _PRESENT_VIEWS.format(schemas=", ".join("?" * schema_count))


MARK_FAILED = f"""UPDATE {BATCHES}
SET status = 'failed', error = ?, finished_at = ?,
    dbt_invocation_id = COALESCE(?, dbt_invocation_id)
WHERE batch_id = ? AND status IN ('refreshing', 'refreshed')"""

# Run while holding the lock: whatever is still in flight belongs to a run that died.
ABANDON_IN_FLIGHT = f"""UPDATE {BATCHES}
SET status = 'failed', error = ?, finished_at = ?
WHERE status IN ('refreshing', 'refreshed')"""

# The warehouse's own clock (UTC): lock times are compared on one clock, whichever host wrote
# them.
WAREHOUSE_UTC_NOW = {"sqlserver": "SELECT SYSUTCDATETIME()"}

COUNT_IN_FLIGHT = f"SELECT COUNT(*) FROM {BATCHES} WHERE status IN ('refreshing', 'refreshed')"

# Where the pinned snapshot left the data's clock (W1). Parameters: high water, resume at,
# batch_id.
MARK_PINNED = f"""UPDATE {BATCHES} SET data_high_water = ?, resume_at = ?
WHERE batch_id = ? AND status = 'refreshed'"""

# The watermark (W1): where the latest merged batch left the sync (batches merged before these
# columns existed resume from their refresh start).
WATERMARK = f"""SELECT COALESCE(resume_at, refresh_started_at), refresh_started_at,
    utc_offset_seconds, data_high_water, started_at
FROM {BATCHES}
WHERE batch_id = (SELECT MAX(batch_id) FROM {BATCHES} WHERE status = 'merged')"""
# The data clock's leads of the merged batches that started at or after a time (parameter):
# the reference a later lead is held against (W1).
DATA_LEADS = f"""SELECT data_high_water, refresh_started_at FROM {BATCHES}
WHERE status = 'merged' AND data_high_water IS NOT NULL AND started_at >= ?"""

BATCH_COLUMNS = (
    "batch_id", "flow_run_id", "target", "window_kind", "requested_start",
    "refresh_started_at", "refresh_finished_at", *ROW_COLUMNS.values(),
    "status", "dbt_invocation_id", "error", "started_at", "finished_at", "reconciled",
    "utc_offset_seconds", "data_high_water", "resume_at", *FINGERPRINTS.values(),
)  # fmt: skip

# The last N batches, newest first (no LIMIT/TOP: both dialects differ there).
RECENT_BATCHES = f"""SELECT {", ".join(BATCH_COLUMNS)} FROM {BATCHES}
WHERE batch_id > (SELECT COALESCE(MAX(batch_id), 0) FROM {BATCHES}) - ?
ORDER BY batch_id DESC"""

GET_BATCH = f"SELECT {', '.join(BATCH_COLUMNS)} FROM {BATCHES} WHERE batch_id = ?"

# --- per-entity statistics (L1) ------------------------------------------------------------

DELETE_STATS = f"DELETE FROM {STATS} WHERE batch_id = ?"
STATS_COLUMNS = (
    "entity", "inserted", "changed", "closed", "rejected", "ties", "reopened", "live_keys",
    "source_keys", "missing_keys",
)  # fmt: skip
INSERT_STATS = f"""INSERT INTO {STATS} (batch_id, {", ".join(STATS_COLUMNS)})
VALUES (?, {", ".join("?" for _ in STATS_COLUMNS)})"""
GET_STATS = f"""SELECT {", ".join(STATS_COLUMNS)} FROM {STATS} WHERE batch_id = ? ORDER BY entity"""
# The latest reconciliation per entity: its batch, when it merged, what it found.
LAST_RECONCILIATION = f"""SELECT s.entity, b.batch_id, b.finished_at, s.closed, s.reopened,
    s.live_keys, s.source_keys
FROM {STATS} s JOIN {BATCHES} b ON b.batch_id = s.batch_id
WHERE b.batch_id = (SELECT MAX(batch_id) FROM {BATCHES} WHERE status = 'merged' AND reconciled = 1)
ORDER BY s.entity"""
# W1: the first merged full load (the warehouse is complete from then on), and the first merged
# batch of any kind.
FIRST_FULL_LOAD = f"""SELECT MIN(batch_id) FROM {BATCHES}
WHERE status = 'merged' AND window_kind = 'full'"""
FIRST_MERGED = f"""SELECT batch_id, window_kind, requested_start FROM {BATCHES}
WHERE batch_id = (SELECT MIN(batch_id) FROM {BATCHES} WHERE status = 'merged')"""
# Per entity, the sums of batches first..last (parameters: first, last).
ENTITY_TOTALS = f"""SELECT entity, SUM(inserted), SUM(changed), SUM(closed), SUM(reopened),
    SUM(rejected)
FROM {STATS} WHERE batch_id BETWEEN ? AND ? GROUP BY entity"""
# Per queue table, the rows batches first..last refreshed (parameters: first, last).
QUEUE_ROW_TOTALS = f"""SELECT {", ".join(f"SUM({c})" for c in ROW_COLUMNS.values())}
FROM {BATCHES} WHERE batch_id BETWEEN ? AND ?"""
RECENT_REJECTS = f"""SELECT entity, SUM(rejected) FROM {STATS}
WHERE batch_id > (SELECT COALESCE(MAX(batch_id), 0) FROM {BATCHES}) - ?
GROUP BY entity HAVING SUM(rejected) > 0 ORDER BY entity"""


def version_stats(entity: Entity) -> str:
    """inserted / changed / closed / reopened versions batch `?` added to the entity's history.

    inserted = the key's first version; changed = any other live version; closed = deletion
    versions; reopened = live versions that follow a deletion version (a key back at the
    source, H7; counted in changed too). Parameters: batch_id.
    """
    h = f"exigo_history.{entity.name}_history"
    same_key = " AND ".join(f"p.{k} = h.{k}" for k in entity.key_columns)
    first = f"NOT EXISTS (SELECT 1 FROM {h} p WHERE {same_key} AND p.valid_from < h.valid_from)"
    after_deletion = (
        f"EXISTS (SELECT 1 FROM {h} p WHERE {same_key} AND p.valid_to = h.valid_from "
        "AND CAST(p.is_deleted AS INTEGER) = 1)"
    )
    deleted = "CAST(h.is_deleted AS INTEGER) = 1"
    return f"""SELECT
    COALESCE(SUM(CASE WHEN NOT ({deleted}) AND {first} THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN NOT ({deleted}) AND NOT {first} THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN {deleted} THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN NOT ({deleted}) AND {after_deletion} THEN 1 ELSE 0 END), 0)
FROM {h} h WHERE h.batch_id = ?"""


# The deletion guard's counts of a batch (H9; the dbt model exigo_deletion_guard, found by name
# like the rejected rows). Parameters: batch_id.
FIND_DELETION_GUARD = """SELECT table_schema FROM information_schema.tables
WHERE table_name = 'exigo_deletion_guard' ORDER BY table_schema"""


def guard_stats(schema: str) -> str:
    return f"""SELECT entity, live_keys, source_keys, missing_keys
FROM {quote(schema)}.exigo_deletion_guard WHERE batch_id = ?"""


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
    return f"""SELECT entity, COUNT(*) FROM {quote(schema)}.exigo_rejected_rows
WHERE batch_id = ? GROUP BY entity"""


# --- run lock (R2) -------------------------------------------------------------------------

LOCK_COLUMNS = (
    "token", "flow_run_id", "host", "pid", "process_marker", "acquired_at", "heartbeat_at",
    "prefect_api", "prefect_lease_id", "released_at", "host_id",
)  # fmt: skip
GET_LOCK = f"SELECT {', '.join(LOCK_COLUMNS)} FROM {LOCK} WHERE lock_name = ?"
INSERT_LOCK = f"""INSERT INTO {LOCK} (lock_name, token, flow_run_id, host, host_id, pid,
    process_marker, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# Compare-and-swap on the previous token: two contenders cannot both take over a dead lock.
TAKE_OVER_LOCK = f"""UPDATE {LOCK} SET token = ?, flow_run_id = ?, host = ?, host_id = ?, pid = ?,
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
