"""The batch ledger in the warehouse (L1/L2): one row per batch, per-entity statistics, and the
run lock's row, read and written through one `Ledger` holding one connection.

Schema setup (CREATE-if-missing, columns added since) belongs to the write path only: a
`Ledger.open(target)` checks the schema with one catalogue query and runs DDL only when
something is missing; `Ledger.open(target, read_only=True)` never writes, so `exigo-sync status`
works under a login with read-only rights and, on DuckDB, without taking the writer's lock.

Connections stay short (one ledger transition, one status screen): DuckDB admits one writer
process per file, and dbt must be able to open the warehouse between the flow's statements.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exigo_sync.catalog import REPLICATED_ENTITIES
from exigo_sync.profiles import Target
from exigo_sync.source import RefreshResult
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.connection import WarehouseConnection, connect
from exigo_sync.warehouse.errors import WarehouseBusy

MAX_ERROR_CHARS = 2000
# How long a write waits while another process has the DuckDB file open (a `status` reading,
# the analytics copy, dbt finishing): such holds last milliseconds to seconds.
BUSY_WAIT_SECONDS = 15.0


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


class Ledger:
    """The ledger of one warehouse, through one open connection (`Ledger.open`)."""

    def __init__(self, con: WarehouseConnection, *, read_only: bool = False) -> None:
        self.con = con
        self.read_only = read_only

    @classmethod
    @contextmanager
    def open(
        cls, target: Target, *, read_only: bool = False, busy_wait: float = BUSY_WAIT_SECONDS
    ) -> Iterator[Ledger]:
        """The ledger of `target`'s warehouse, closed on exit. Writable by default (the schema
        is brought up to date first); `read_only` never writes and never creates anything."""
        deadline = time.monotonic() + busy_wait
        while True:
            try:
                con = connect(target, read_only=read_only)
                break
            except WarehouseBusy:
                if read_only or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        try:
            ledger = cls(con, read_only=read_only)
            if not read_only:
                ledger.ensure_schema()
            yield ledger
        finally:
            con.close()

    # --- schema (write path only) -------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the ledger schema, or bring an older one up to date: one catalogue query,
        and DDL only for what is missing."""
        present = self._present_columns()
        wanted = q.expected_columns()
        if all(columns <= present.get(table, set()) for table, columns in wanted.items()):
            return
        engine = self.con.engine
        for stmt in q.ddl(engine):
            self.con.execute(stmt)
        present = self._present_columns()
        for table, added in q.ADDED_COLUMNS.items():
            for column, _ in added:
                if column not in present.get(table, set()):
                    self.con.execute(q.add_column(engine, table, column))

    def exists(self) -> bool:
        """The ledger's tables are there (a read-only caller's first question)."""
        present = self._present_columns()
        return all(table in present for table in q.expected_columns())

    def _present_columns(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for table, column in self.con.execute(q.LEDGER_COLUMNS, [q.SCHEMA]).fetchall():
            out.setdefault(str(table).lower(), set()).add(str(column).lower())
        return out

    # --- batches --------------------------------------------------------------------------

    def watermark(self) -> datetime | None:
        row = self.con.execute(q.WATERMARK).fetchone()
        return row[0] if row else None

    def abandon_in_flight(self, reason: str) -> int:
        """Mark batches left `refreshing`/`refreshed` by a dead run as failed. Call under the
        lock."""
        (count,) = self.con.execute(q.COUNT_IN_FLIGHT).fetchone()
        if count:
            self.con.execute(q.ABANDON_IN_FLIGHT, [reason[:MAX_ERROR_CHARS], utcnow()])
        return int(count)

    def start_batch(
        self,
        *,
        flow_run_id: str | None,
        target_name: str,
        window_kind: str,
        requested_start: datetime,
        reconciled: bool = False,
    ) -> int:
        """Record a new batch as `refreshing` *before* calling queue.Refresh. Call under the
        lock."""
        (batch_id,) = self.con.execute(q.NEXT_BATCH_ID).fetchone()
        self.con.execute(
            q.INSERT_BATCH,
            [batch_id, flow_run_id, target_name, window_kind, requested_start, utcnow(),
             int(reconciled)],
        )  # fmt: skip
        return int(batch_id)

    def mark_refreshed(self, batch_id: int, result: RefreshResult) -> None:
        counts = [int(result.row_counts.get(t, 0)) for t in q.ROW_COLUMNS]
        self.con.execute(
            q.MARK_REFRESHED,
            [result.refresh_started_at, result.refresh_finished_at, *counts, batch_id],
        )

    def compute_stats(self, batch_id: int) -> list[EntityStats]:
        """Per-entity inserted / changed / closed / rejected / ties of a batch dbt just merged."""
        con = self.con
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
            counts = (int(ins), int(chg), int(closed), rej, int(ties), int(reopened))
            stats.append(EntityStats(e.name, *counts, live, source, missing))
        return stats

    def mark_merged(
        self, batch_id: int, invocation_id: str | None, stats: list[EntityStats]
    ) -> None:
        """Statistics and the `merged` status in one transaction: the watermark moves only
        here (L2)."""
        with self.con.transaction():
            self.con.execute(q.DELETE_STATS, [batch_id])
            for s in stats:
                self.con.execute(
                    q.INSERT_STATS, [batch_id, *(getattr(s, c) for c in q.STATS_COLUMNS)]
                )
            self.con.execute(q.MARK_MERGED, [invocation_id, utcnow(), batch_id])

    def mark_failed(self, batch_id: int, error: str, invocation_id: str | None = None) -> None:
        """`error` must already be secret-free (see profiles.Target.scrub)."""
        self.con.execute(
            q.MARK_FAILED, [error[:MAX_ERROR_CHARS], utcnow(), invocation_id, batch_id]
        )

    # --- what an operator reads -----------------------------------------------------------

    def recent_batches(self, n: int = 10) -> list[dict[str, Any]]:
        rows = self.con.execute(q.RECENT_BATCHES, [n]).fetchall()
        return [dict(zip(q.BATCH_COLUMNS, r, strict=True)) for r in rows]

    def get_batch(self, batch_id: int) -> dict[str, Any] | None:
        row = self.con.execute(q.GET_BATCH, [batch_id]).fetchone()
        return dict(zip(q.BATCH_COLUMNS, row, strict=True)) if row else None

    def entity_stats(self, first: int, last: int) -> dict[str, dict[str, int]]:
        """Per entity, the sums of the statistics of batches `first`..`last`."""
        rows = self.con.execute(q.ENTITY_TOTALS, [first, last]).fetchall()
        names = ("inserted", "changed", "closed", "reopened", "rejected")
        return {
            str(r[0]): {n: int(v or 0) for n, v in zip(names, r[1:], strict=True)} for r in rows
        }

    def queue_rows(self, first: int, last: int) -> dict[str, int]:
        """Per queue table, the rows the batches `first`..`last` refreshed."""
        row = self.con.execute(q.QUEUE_ROW_TOTALS, [first, last]).fetchone()
        return {t: int(n or 0) for t, n in zip(q.ROW_COLUMNS, row, strict=True)}

    def recent_rejects(self, n: int = 10) -> list[tuple[str, int]]:
        return [(str(e), int(c)) for e, c in self.con.execute(q.RECENT_REJECTS, [n]).fetchall()]

    def completeness(self) -> Completeness:
        """W1: is every source row in the warehouse (a full load merged), or only what changed
        since the first batch's start?"""
        (full,) = self.con.execute(q.FIRST_FULL_LOAD).fetchone()
        first = self.con.execute(q.FIRST_MERGED).fetchone()
        if full is not None:
            return Completeness(True, f"complete: full load merged in batch {full}")
        if first is None:
            return Completeness(False, "empty: no merged batch yet")
        return Completeness(
            False,
            f"partial: holds what changed since {first[2]:%Y-%m-%d %H:%M} (batch {first[0]}, "
            f"{first[1]}); `exigo-sync run --full` loads everything",
        )

    def last_reconciliation(self) -> list[dict[str, Any]]:
        """Per entity, what the latest merged reconciliation run found."""
        cols = ("entity", "batch_id", "finished_at", "deleted", "reopened", "live_keys",
                "source_keys")  # fmt: skip
        return [
            dict(zip(cols, r, strict=True))
            for r in self.con.execute(q.LAST_RECONCILIATION).fetchall()
        ]

    # --- the run lock's row (exigo_sync.warehouse.lock decides; this only reads and writes) ---

    def lock_row(self, name: str) -> dict[str, Any] | None:
        row = self.con.execute(q.GET_LOCK, [name]).fetchone()
        return dict(zip(q.LOCK_COLUMNS, row, strict=True)) if row else None

    def insert_lock(self, name: str, token: str, holder: list[Any], now: datetime) -> None:
        """Claim a free lock (the primary key makes a rival's simultaneous claim fail)."""
        self.con.execute(q.INSERT_LOCK, [name, token, *holder, now, now])

    def take_over_lock(
        self, name: str, token: str, holder: list[Any], now: datetime, previous_token: str
    ) -> int:
        """Compare-and-swap on the previous holder's token; returns 1 if this call won."""
        return self.con.changed(q.TAKE_OVER_LOCK, [token, *holder, now, now, name, previous_token])

    def beat_lock(self, name: str, token: str) -> int:
        return self.con.changed(q.HEARTBEAT_LOCK, [utcnow(), name, token])

    def record_lock_slot(self, name: str, token: str, api: str | None, lease: str | None) -> int:
        return self.con.changed(q.RECORD_LOCK_SLOT, [api, lease, name, token])

    def release_lock(self, name: str, token: str, *, slot_returned: bool) -> int:
        """Delete the row, or keep it marked released when the Prefect slot leaked (the next
        run returns the slot the row names)."""
        if slot_returned:
            return self.con.changed(q.RELEASE_LOCK, [name, token])
        return self.con.changed(q.MARK_LOCK_RELEASED, [utcnow(), name, token])
