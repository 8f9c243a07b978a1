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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from exigo_sync.catalog import REPLICATED_ENTITIES
from exigo_sync.profiles import Target
from exigo_sync.source import RefreshResult
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.connection import WarehouseConnection, connect
from exigo_sync.warehouse.errors import WarehouseBusy
from exigo_sync.window import Watermark

MAX_ERROR_CHARS = 2000
# The span of merged batches whose largest data-clock lead is the reference (W1).
LEAD_REFERENCE_SPAN = timedelta(hours=24)
# How long a write waits while another process has the DuckDB file open (a `status` reading,
# the analytics copy, dbt finishing): such holds last milliseconds to seconds.
BUSY_WAIT_SECONDS = 15.0


class LockLost(RuntimeError):
    """This run no longer holds the lock it wrote under (it was paused, or its host cut off,
    and another run took the lock over): it must stop without writing or merging (R2)."""


@dataclass(frozen=True)
class Fence:
    """The lock a run holds: every ledger write it makes after acquiring it is conditional on
    the lock row still carrying this token (R2)."""

    lock_name: str
    token: str

    def params(self) -> list[str]:
        return [self.lock_name, self.token]

    def dbt_env(self) -> dict[str, str]:
        """What dbt's process gets: each model first checks that the lock row still carries
        the token (macro exigo_assert_lock_held), so a dbt run of a batch that lost its lock
        stops before writing."""
        return {"EXIGO_SYNC_LOCK_NAME": self.lock_name, "EXIGO_SYNC_LOCK_TOKEN": self.token}


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
    """The ledger of one warehouse, through one open connection (`Ledger.open`).

    With a `fence` (the lock the caller holds), every write to a batch is conditional on that
    lock: a write that matches nothing raises LockLost (R2). Without one (tools and tests that
    hold no lock) the writes are plain."""

    def __init__(
        self, con: WarehouseConnection, *, read_only: bool = False, fence: Fence | None = None
    ) -> None:
        self.con = con
        self.read_only = read_only
        self.fence = fence

    @classmethod
    @contextmanager
    def open(
        cls,
        target: Target,
        *,
        read_only: bool = False,
        busy_wait: float = BUSY_WAIT_SECONDS,
        fence: Fence | None = None,
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
            ledger = cls(con, read_only=read_only, fence=fence)
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
        """Where the next window resumes (before the overlap): the latest merged batch's mark."""
        row = self.con.execute(q.WATERMARK).fetchone()
        return row[0] if row else None

    def watermark_detail(self) -> Watermark | None:
        """The latest merged batch's marks on both clocks, and the data clock's reference lead
        over the day before it (W1; exigo_sync.window)."""
        row = self.con.execute(q.WATERMARK).fetchone()
        if not row:
            return None
        resume_at, refreshed_at, offset_seconds, high_water, started_at = row
        leads = [
            hw - refreshed
            for hw, refreshed in self.con.execute(
                q.DATA_LEADS, [started_at - LEAD_REFERENCE_SPAN]
            ).fetchall()
        ]
        return Watermark(
            resume_at=resume_at,
            refresh_started_at=refreshed_at,
            utc_offset=timedelta(seconds=offset_seconds) if offset_seconds is not None else None,
            data_lead=high_water - refreshed_at if high_water is not None else None,
            reference_lead=max(leads) if leads else None,
        )

    def now(self) -> datetime:
        """The warehouse's clock, UTC (lock times from every host are compared on it)."""
        statement = q.WAREHOUSE_UTC_NOW.get(self.con.engine)
        if statement is None:  # DuckDB: an embedded file, read by this host's clock
            return utcnow()
        (value,) = self.con.execute(statement).fetchone()
        return value.replace(tzinfo=None)

    def _write(self, statement: str, params: list[Any], *, what: str) -> int:
        """One batch write, fenced when this ledger has a fence; LockLost if the fence stopped
        it. Returns the rows changed."""
        if self.fence is None:
            return self.con.changed(statement, params)
        changed = self.con.changed(q.fenced(statement), [*params, *self.fence.params()])
        if changed == 0 and not self.holds_lock():
            raise LockLost(
                f"this run lost the lock '{self.fence.lock_name}' to another run and stops "
                f"without writing ({what}); that run redoes this batch's window (R2)"
            )
        return changed

    def holds_lock(self) -> bool:
        """The lock row still carries this ledger's fence token (True without a fence)."""
        if self.fence is None:
            return True
        row = self.con.execute(
            f"SELECT CASE WHEN {q.FENCE} THEN 1 ELSE 0 END", self.fence.params()
        ).fetchone()
        return bool(row and row[0])

    def abandon_in_flight(self, reason: str) -> int:
        """Mark batches left `refreshing`/`refreshed` by a dead run as failed. Call under the
        lock."""
        (count,) = self.con.execute(q.COUNT_IN_FLIGHT).fetchone()
        if count:
            self._write(q.ABANDON_IN_FLIGHT, [reason[:MAX_ERROR_CHARS], utcnow()], what="abandon")
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
        self._write(
            q.INSERT_BATCH,
            [batch_id, flow_run_id, target_name, window_kind, requested_start, utcnow(),
             int(reconciled)],
            what="start a batch",
        )  # fmt: skip
        return int(batch_id)

    def record_failed_start(
        self, *, flow_run_id: str | None, target_name: str, error: str, reconciled: bool = False
    ) -> int:
        """A batch that failed before it had a window (its source did not answer): recorded
        `failed` with the error, so the ledger shows every attempt (B5). Call under the lock."""
        (batch_id,) = self.con.execute(q.NEXT_BATCH_ID).fetchone()
        with self.con.transaction():
            self._write(
                q.INSERT_BATCH,
                [batch_id, flow_run_id, target_name, None, None, utcnow(), int(reconciled)],
                what="record a failed batch",
            )
            self._write(
                q.MARK_FAILED, [error[:MAX_ERROR_CHARS], utcnow(), None, batch_id],
                what="record a failed batch",
            )  # fmt: skip
        return int(batch_id)

    def mark_refreshed(self, batch_id: int, result: RefreshResult) -> None:
        counts = [int(result.row_counts.get(t, 0)) for t in q.ROW_COLUMNS]
        offset = result.utc_offset
        self._write(
            q.MARK_REFRESHED,
            [result.refresh_started_at, result.refresh_finished_at,
             round(offset.total_seconds()) if offset is not None else None, *counts, batch_id],
            what="mark refreshed",
        )  # fmt: skip

    def mark_pinned(
        self, batch_id: int, refreshed_at: datetime, data_high_water: datetime | None,
        window_start: datetime,
    ) -> datetime:  # fmt: skip
        """W1: record the latest stamp the pinned snapshot held and where the next window
        resumes: the earlier of the refresh start and that stamp; with no stamp (nothing
        changed), where the latest merged batch left it (or this window's start). Returns it."""
        if data_high_water is not None:
            resume_at = min(refreshed_at, data_high_water)
        else:
            resume_at = self.watermark() or window_start
        self._write(q.MARK_PINNED, [data_high_water, resume_at, batch_id], what="mark pinned")
        return resume_at

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
        self,
        batch_id: int,
        invocation_id: str | None,
        stats: list[EntityStats],
        fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        """Statistics and the `merged` status in one transaction: the watermark moves only
        here (L2). `fingerprints`: per part of the build (q.FINGERPRINTS), what the batch built
        it from (view_definitions, lookup_contents)."""
        with self.con.transaction():
            # The status first: a run that lost its lock writes nothing, statistics included.
            self._write(q.MARK_MERGED, [invocation_id, utcnow(), batch_id], what="mark merged")
            for part, value in (fingerprints or {}).items():
                self.con.execute(q.mark_fingerprint(part), [value, batch_id])
            self.con.execute(q.DELETE_STATS, [batch_id])
            for s in stats:
                self.con.execute(
                    q.INSERT_STATS, [batch_id, *(getattr(s, c) for c in q.STATS_COLUMNS)]
                )

    def mark_pending(self, batch_id: int, part: str) -> None:
        """The batch is about to build `part` (q.FINGERPRINTS): until it is merged, the next
        batch cannot know what that part holds, and builds it again."""
        self._write(q.mark_fingerprint(part), [q.PENDING, batch_id], what=f"mark {part} pending")

    def last_fingerprint(self, part: str) -> str | None:
        """What the last batch that built `part` recorded (`pending`: it was not merged)."""
        row = self.con.execute(q.last_fingerprint(part)).fetchone()
        return row[0] if row else None

    def present_views(self, schemas: Sequence[str]) -> list[tuple[str, str, str]]:
        """The views in these schemas: (database, schema, name)."""
        rows = self.con.execute(q.present_views(len(schemas)), list(schemas)).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def mark_failed(self, batch_id: int, error: str, invocation_id: str | None = None) -> None:
        """`error` must already be secret-free (see profiles.Target.scrub)."""
        self._write(
            q.MARK_FAILED,
            [error[:MAX_ERROR_CHARS], utcnow(), invocation_id, batch_id],
            what="mark failed",
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
        return self.con.changed(q.HEARTBEAT_LOCK, [self.now(), name, token])

    def record_lock_slot(self, name: str, token: str, api: str | None, lease: str | None) -> int:
        return self.con.changed(q.RECORD_LOCK_SLOT, [api, lease, name, token])

    def release_lock(self, name: str, token: str, *, slot_returned: bool) -> int:
        """Delete the row, or keep it marked released when the Prefect slot leaked (the next
        run returns the slot the row names)."""
        if slot_returned:
            return self.con.changed(q.RELEASE_LOCK, [name, token])
        return self.con.changed(q.MARK_LOCK_RELEASED, [self.now(), name, token])
