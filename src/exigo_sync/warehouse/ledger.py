"""The batch ledger in the warehouse (L1/L2): one row per batch plus per-entity statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exigo_sync.catalog import REPLICATED_ENTITIES
from exigo_sync.profiles import Target
from exigo_sync.source import RefreshResult
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.connection import connect, engine

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class EntityStats:
    entity: str
    inserted: int
    changed: int
    closed: int
    rejected: int
    ties: int
    reopened: int = 0
    # Swept entities only (None otherwise): the deletion guard's counts (H9).
    live_keys: int | None = None
    source_keys: int | None = None
    missing_keys: int | None = None


@dataclass(frozen=True)
class Completeness:
    """W1: complete once a full load merged; partial until then (a first batch from a
    configured start)."""

    complete: bool
    detail: str


def utcnow() -> datetime:
    """Ledger wall-clock times: naive UTC (both warehouses store them without a zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_schema(con: Any, warehouse_engine: str) -> None:
    """Create the ledger schema, or bring an older one up to date (idempotent)."""
    for stmt in q.ddl(warehouse_engine):
        con.execute(stmt)
    for table, added in q.ADDED_COLUMNS.items():
        present = {
            str(r[0]).lower() for r in con.execute(q.TABLE_COLUMNS, [q.SCHEMA, table]).fetchall()
        }
        for column, _ in added:
            if column not in present:
                con.execute(q.add_column(warehouse_engine, table, column))


def abandon_in_flight(con: Any, reason: str) -> int:
    """Mark batches left `refreshing`/`refreshed` by a dead run as failed. Call under the lock."""
    (count,) = con.execute(q.COUNT_IN_FLIGHT).fetchone()
    if count:
        con.execute(q.ABANDON_IN_FLIGHT, [reason[:MAX_ERROR_CHARS], utcnow()])
    return int(count)


def watermark(target: Target) -> datetime | None:
    with connect(target) as con:
        ensure_schema(con, engine(target))
        row = con.execute(q.WATERMARK).fetchone()
    return row[0] if row else None


def start_batch(
    target: Target,
    *,
    flow_run_id: str | None,
    window_kind: str,
    requested_start: datetime,
    reconciled: bool = False,
) -> int:
    """Record a new batch as `refreshing` *before* calling queue.Refresh. Call under the lock."""
    with connect(target) as con:
        (batch_id,) = con.execute(q.NEXT_BATCH_ID).fetchone()
        con.execute(
            q.INSERT_BATCH,
            [batch_id, flow_run_id, target.name, window_kind, requested_start, utcnow(),
             int(reconciled)],
        )  # fmt: skip
    return int(batch_id)


def mark_refreshed(target: Target, batch_id: int, result: RefreshResult) -> None:
    counts = [int(result.row_counts.get(t, 0)) for t in q.ROW_COLUMNS]
    with connect(target) as con:
        con.execute(
            q.MARK_REFRESHED,
            [result.refresh_started_at, result.refresh_finished_at, *counts, batch_id],
        )


def compute_stats(target: Target, batch_id: int) -> list[EntityStats]:
    """Per-entity inserted / changed / closed / rejected / ties of a batch dbt just merged."""
    with connect(target) as con:
        schemas = [r[0] for r in con.execute(q.FIND_REJECTED_ROWS).fetchall()]
        rejected = {
            str(entity).lower(): int(n)
            for schema in schemas[:1]
            for entity, n in con.execute(q.reject_stats(schema), [batch_id]).fetchall()
        }
        guard_schemas = [r[0] for r in con.execute(q.FIND_DELETION_GUARD).fetchall()]
        guarded = {
            str(entity): (int(live), int(source), int(missing))
            for schema in guard_schemas[:1]
            for entity, live, source, missing in con.execute(
                q.guard_stats(schema), [batch_id]
            ).fetchall()
        }
        stats = []
        for e in REPLICATED_ENTITIES:
            ins, chg, closed, reopened = con.execute(q.version_stats(e), [batch_id]).fetchone()
            (ties,) = con.execute(q.tie_stats(e), [batch_id]).fetchone()
            rej = rejected.get(e.name, rejected.get(e.table.lower(), 0))
            live, source, missing = guarded.get(e.name, (None, None, None))
            stats.append(
                EntityStats(
                    e.name,
                    int(ins),
                    int(chg),
                    int(closed),
                    rej,
                    int(ties),
                    int(reopened),
                    live,
                    source,
                    missing,
                )
            )
    return stats


def mark_merged(
    target: Target, batch_id: int, invocation_id: str | None, stats: list[EntityStats]
) -> None:
    """Statistics and the `merged` status in one transaction: the watermark moves only here (L2)."""
    with connect(target) as con, con.transaction():
        con.execute(q.DELETE_STATS, [batch_id])
        for s in stats:
            con.execute(q.INSERT_STATS, [batch_id, *(getattr(s, c) for c in q.STATS_COLUMNS)])
        con.execute(q.MARK_MERGED, [invocation_id, utcnow(), batch_id])


def mark_failed(
    target: Target, batch_id: int, error: str, invocation_id: str | None = None
) -> None:
    """`error` must already be secret-free (see profiles.Target.scrub)."""
    with connect(target) as con:
        con.execute(q.MARK_FAILED, [error[:MAX_ERROR_CHARS], utcnow(), invocation_id, batch_id])


def recent_batches(target: Target, n: int = 10) -> list[dict[str, Any]]:
    with connect(target) as con:
        ensure_schema(con, engine(target))
        rows = con.execute(q.RECENT_BATCHES, [n]).fetchall()
    return [dict(zip(q.BATCH_COLUMNS, r, strict=True)) for r in rows]


def get_batch(target: Target, batch_id: int) -> dict[str, Any] | None:
    with connect(target) as con:
        row = con.execute(q.GET_BATCH, [batch_id]).fetchone()
    return dict(zip(q.BATCH_COLUMNS, row, strict=True)) if row else None


def recent_rejects(target: Target, n: int = 10) -> list[tuple[str, int]]:
    with connect(target) as con:
        ensure_schema(con, engine(target))
        return [(str(e), int(c)) for e, c in con.execute(q.RECENT_REJECTS, [n]).fetchall()]


def completeness(target: Target) -> Completeness:
    """W1: is every source row in the warehouse (a full load merged), or only what changed
    since the first batch's start?"""
    with connect(target) as con:
        ensure_schema(con, engine(target))
        (full,) = con.execute(q.FIRST_FULL_LOAD).fetchone()
        first = con.execute(q.FIRST_MERGED).fetchone()
    if full is not None:
        return Completeness(True, f"complete: full load merged in batch {full}")
    if first is None:
        return Completeness(False, "empty: no merged batch yet")
    return Completeness(
        False,
        f"partial: holds what changed since {first[2]:%Y-%m-%d %H:%M} (batch {first[0]}, "
        f"{first[1]}); `exigo-sync run --full` loads everything",
    )


def last_reconciliation(target: Target) -> list[dict[str, Any]]:
    """Per entity, what the latest merged reconciliation run found."""
    cols = ("entity", "batch_id", "finished_at", "deleted", "reopened", "live_keys",
            "source_keys")  # fmt: skip
    with connect(target) as con:
        ensure_schema(con, engine(target))
        return [
            dict(zip(cols, r, strict=True)) for r in con.execute(q.LAST_RECONCILIATION).fetchall()
        ]
