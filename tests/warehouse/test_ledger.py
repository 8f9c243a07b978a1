"""The batch ledger (exigo_sync.warehouse.ledger.Ledger) on every warehouse engine: each test runs
on a fresh DuckDB file and, where a server is configured, on SQL Server (the `warehouse` fixture,
tests/warehouse/conftest.py). Engine-neutral: nothing here knows which engine it runs on.

The schema is set up on the write path only, once; a batch's life (L1) moves the watermark only
when it is merged, in one transaction with its statistics (L2); abandoned batches of a dead run
are failed (R1); what an operator reads (recent batches, completeness, W1). `compute_stats` needs
dbt's tables and is proven by the dbt and flow tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from exigo_sync.profiles import Target
from exigo_sync.source import RefreshResult
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.ledger import MAX_ERROR_CHARS, Completeness, EntityStats, Ledger
from tests.sqlserver.targets import babelfish_gap

START = datetime(2026, 1, 4, 10, 0, 0, 123456)  # a requested start, on the source clock
REFRESHED = datetime(2026, 1, 5, 9, 59, 30, 123000)  # where a batch's refresh began
OVERLAP = timedelta(minutes=10)
ROW_COUNTS = {table: n for n, table in enumerate(q.ROW_COLUMNS, start=1)}


def _refresh(started: datetime) -> RefreshResult:
    return RefreshResult(START, started, started + timedelta(seconds=42), dict(ROW_COUNTS))


def _start(led: Ledger, kind: str = "watermark", start: datetime = START) -> int:
    return led.start_batch(
        flow_run_id=f"run-{kind}", target_name="wh", window_kind=kind, requested_start=start
    )


def _merged(led: Ledger, refreshed: datetime, kind: str = "watermark", **kw: Any) -> int:
    batch_id = _start(led, kind, **kw)
    led.mark_refreshed(batch_id, _refresh(refreshed))
    led.mark_merged(batch_id, f"inv-{batch_id}", [])
    return batch_id


def _status(led: Ledger, batch_id: int) -> str:
    batch = led.get_batch(batch_id)
    assert batch is not None, batch_id
    return str(batch["status"])


class _Recording:
    """The ledger's connection, recording every statement run through it."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.engine = con.engine
        self.sql: list[str] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.sql.append(sql)
        return self.con.execute(sql, params)


def _columns(con: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table, column in con.execute(q.LEDGER_COLUMNS, [q.SCHEMA]).fetchall():
        out.setdefault(str(table).lower(), set()).add(str(column).lower())
    return out


def _schemas(con: Any) -> int:
    sql = "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?"
    return int(con.execute(sql, [q.SCHEMA]).fetchone()[0])


def test_l1_schema_is_set_up_on_the_write_path_only_and_once(warehouse: Target) -> None:
    """A read-only ledger on a fresh warehouse creates nothing (status under read-only rights);
    the first writable open creates every table with every column; later opens run one catalogue
    query and no DDL, and the DDL itself is idempotent."""
    for _ in range(2):
        with Ledger.open(warehouse, read_only=True) as led:
            assert not led.exists()
            assert _schemas(led.con) == 0 and _columns(led.con) == {}

    with Ledger.open(warehouse) as led:
        assert led.exists()
        assert _columns(led.con) == q.expected_columns()

    with Ledger.open(warehouse) as led:
        recording = _Recording(led.con)
        Ledger(recording).ensure_schema()  # type: ignore[arg-type]
        assert recording.sql == [q.LEDGER_COLUMNS]
        for stmt in q.ddl(led.con.engine):
            led.con.execute(stmt)
        assert _columns(led.con) == q.expected_columns()

    with Ledger.open(warehouse, read_only=True) as led:
        assert led.exists() and led.recent_batches() == []


def test_l1_l2_a_batch_moves_the_watermark_only_once_merged(warehouse: Target) -> None:
    """start_batch (`refreshing`, before queue.Refresh) -> mark_refreshed (the source clock and
    row counts) -> mark_merged: only the last moves the watermark, to where the refresh began."""
    with Ledger.open(warehouse) as led:
        assert led.watermark() is None
        batch_id = _start(led, "initial")
        assert batch_id == 1
        b = led.get_batch(batch_id)
        assert b is not None
        assert (b["status"], b["flow_run_id"], b["target"], b["window_kind"]) == (
            "refreshing", "run-initial", "wh", "initial"
        )  # fmt: skip
        assert b["requested_start"] == START and b["reconciled"] == 0
        assert b["started_at"] is not None and b["finished_at"] is None
        assert led.watermark() is None

        led.mark_refreshed(batch_id, _refresh(REFRESHED))
        b = led.get_batch(batch_id)
        assert b is not None and b["status"] == "refreshed"
        assert b["refresh_started_at"] == REFRESHED
        assert b["refresh_finished_at"] == REFRESHED + timedelta(seconds=42)
        assert {table: b[column] for table, column in q.ROW_COLUMNS.items()} == ROW_COUNTS
        assert led.watermark() is None  # refreshed is not merged (L2)

        led.mark_merged(batch_id, "inv-1", [])
        b = led.get_batch(batch_id)
        assert b is not None and (b["status"], b["dbt_invocation_id"]) == ("merged", "inv-1")
        assert b["finished_at"] is not None and b["finished_at"] >= b["started_at"]
        assert led.watermark() == REFRESHED

        # The next batch gets the next id, and moves the watermark when it merges.
        later = REFRESHED + timedelta(hours=1)
        assert _merged(led, later, start=REFRESHED - OVERLAP) == batch_id + 1
        assert led.watermark() == later


def test_l2_a_failed_batch_leaves_the_watermark(warehouse: Target) -> None:
    """mark_failed records the (truncated) error and dbt's invocation, and leaves the watermark
    at the last merged batch; a merged batch is never turned failed."""
    with Ledger.open(warehouse) as led:
        merged = _merged(led, REFRESHED)
        failed = _start(led, start=REFRESHED - OVERLAP)
        led.mark_refreshed(failed, _refresh(REFRESHED + timedelta(hours=1)))
        led.mark_failed(failed, "dbt build failed: " + "x" * 3000, invocation_id="inv-2")
        b = led.get_batch(failed)
        assert b is not None and (b["status"], b["dbt_invocation_id"]) == ("failed", "inv-2")
        assert b["error"].startswith("dbt build failed: ")
        assert len(b["error"]) == MAX_ERROR_CHARS
        assert b["finished_at"] is not None
        assert led.watermark() == REFRESHED

        led.mark_failed(merged, "too late")
        b = led.get_batch(merged)
        assert b is not None and (b["status"], b["error"]) == ("merged", None)
        assert led.watermark() == REFRESHED


@pytest.mark.parametrize("part", sorted(q.FINGERPRINTS))
def test_fingerprints_record_pending_until_merged(warehouse: Target, part: str) -> None:
    """What view_definitions and lookup_contents read and write, for each part: the last record
    wins (a `pending` mark of a batch not merged included), a merged batch that left the part
    alone records nothing, and each part's record is its own."""
    other = next(p for p in q.FINGERPRINTS if p != part)
    with Ledger.open(warehouse) as led:
        assert led.last_fingerprint(part) is None
        first = _start(led)
        led.mark_pending(first, part)
        led.mark_refreshed(first, _refresh(REFRESHED))
        assert led.last_fingerprint(part) == q.PENDING
        assert led.last_fingerprint(other) is None
        led.mark_merged(first, "inv-1", [], {part: "f" * 64})
        assert led.last_fingerprint(part) == "f" * 64
        assert _merged(led, REFRESHED + timedelta(hours=1)) > first  # left the part alone
        assert led.last_fingerprint(part) == "f" * 64
        failed = _start(led, start=REFRESHED)
        led.mark_pending(failed, part)
        led.mark_failed(failed, f"died after building the {part}")
        assert led.last_fingerprint(part) == q.PENDING
        assert led.last_fingerprint(other) is None


def test_present_views(warehouse: Target) -> None:
    """The views the warehouse holds, listed by schema (view_definitions' fingerprint)."""
    with Ledger.open(warehouse) as led:
        assert led.present_views(["exigo_sync"]) == []
        led.con.execute(
            "CREATE VIEW exigo_sync.last_batch AS SELECT batch_id FROM exigo_sync.batches"
        )
        try:
            [(database, schema, name)] = led.present_views(["exigo_sync", "exigo_marts"])
            assert (schema.lower(), name.lower()) == ("exigo_sync", "last_batch") and database
        finally:
            led.con.execute("DROP VIEW exigo_sync.last_batch")


def test_l2_statistics_and_merged_status_commit_together(
    warehouse: Target, request: pytest.FixtureRequest
) -> None:
    """mark_merged writes the per-entity statistics and the `merged` status in one transaction:
    when a statistic cannot be written, neither is, and the watermark stays."""
    babelfish_gap(
        request, warehouse,
        "Babelfish 4.2 through FreeTDS: after the duplicate key fails the transaction under "
        "XACT_ABORT, the server has ended it (@@TRANCOUNT 0) but FreeTDS's ROLLBACK is refused "
        "('ROLLBACK can only be used in transaction blocks', 3903), so the engine closes the "
        "connection, its transaction state unknown, and the next mark_merged on it fails. "
        "SQL Server tells the driver the transaction ended (ENVCHANGE); Babelfish through "
        "Microsoft's driver (mssql-python) passes this test.",
        freetds_only=True,
    )  # fmt: skip
    stats = [
        EntityStats("customers", 1, 2, 3, 4, 5, reopened=6),
        EntityStats("payments", 7, 8, 9, 0, 0, 1, live_keys=100, source_keys=99, missing_keys=1),
    ]
    with Ledger.open(warehouse) as led:
        batch_id = _start(led)
        led.mark_refreshed(batch_id, _refresh(REFRESHED))
        with pytest.raises(Exception):  # noqa: B017 (each engine's own duplicate-key error)
            led.mark_merged(batch_id, "inv", [stats[0], stats[0]])
        assert _status(led, batch_id) == "refreshed"
        assert led.entity_stats(batch_id, batch_id) == {}
        assert led.watermark() is None

        led.mark_merged(batch_id, "inv", stats)
        assert _status(led, batch_id) == "merged" and led.watermark() == REFRESHED
        assert led.entity_stats(batch_id, batch_id) == {
            "customers": {"inserted": 1, "changed": 2, "closed": 3, "reopened": 6, "rejected": 4},
            "payments": {"inserted": 7, "changed": 8, "closed": 9, "reopened": 1, "rejected": 0},
        }
        assert led.recent_rejects() == [("customers", 4)]
        assert led.queue_rows(batch_id, batch_id) == ROW_COUNTS


def test_r1_abandon_in_flight_fails_only_the_batches_in_flight(warehouse: Target) -> None:
    """What a run that takes over a dead holder's lock does: every batch still `refreshing` or
    `refreshed` is failed with the reason; merged and failed batches are left as they are."""
    with Ledger.open(warehouse) as led:
        merged = _merged(led, REFRESHED)
        failed = _start(led)
        led.mark_failed(failed, "an earlier failure")
        refreshing = _start(led)
        refreshed = _start(led)
        led.mark_refreshed(refreshed, _refresh(REFRESHED + timedelta(hours=1)))

        assert led.abandon_in_flight("abandoned: its run ended without finishing") == 2
        assert {i: _status(led, i) for i in (merged, failed, refreshing, refreshed)} == {
            merged: "merged", failed: "failed", refreshing: "failed", refreshed: "failed"
        }  # fmt: skip
        for batch_id in (refreshing, refreshed):
            b = led.get_batch(batch_id)
            assert b is not None and b["finished_at"] is not None
            assert b["error"] == "abandoned: its run ended without finishing"
        assert led.get_batch(failed)["error"] == "an earlier failure"  # type: ignore[index]
        assert led.abandon_in_flight("again") == 0
        assert led.watermark() == REFRESHED


def test_l1_recent_batches_newest_first(warehouse: Target) -> None:
    with Ledger.open(warehouse) as led:
        assert led.recent_batches() == []
        ids = [_merged(led, REFRESHED), _start(led), _start(led)]
        led.mark_failed(ids[1], "boom")
        recent = led.recent_batches()
        assert [b["batch_id"] for b in recent] == ids[::-1]
        assert [b["status"] for b in recent] == ["refreshing", "failed", "merged"]
        assert set(recent[0]) == set(q.BATCH_COLUMNS)
        assert [b["batch_id"] for b in led.recent_batches(2)] == [ids[2], ids[1]]


def test_w1_completeness_empty_then_partial_then_complete(warehouse: Target) -> None:
    """The ledger says whether the warehouse holds every source row: not before a batch merged,
    partial after a batch from a configured start, complete once a full load merged (a failed
    full load does not count)."""
    with Ledger.open(warehouse) as led:
        assert led.completeness() == Completeness(False, "empty: no merged batch yet")
        first = _merged(led, REFRESHED, "initial", start=datetime(2026, 1, 4, 10, 0))
        partial = Completeness(
            False,
            f"partial: holds what changed since 2026-01-04 10:00 (batch {first}, initial); "
            "`exigo-sync run --full` loads everything",
        )
        assert led.completeness() == partial
        failed_full = _start(led, "full")
        led.mark_failed(failed_full, "boom")
        _merged(led, REFRESHED + timedelta(hours=1), start=REFRESHED - OVERLAP)
        assert led.completeness() == partial
        full = _merged(led, REFRESHED + timedelta(hours=2), "full", start=datetime(1753, 1, 1))
        assert led.completeness() == Completeness(
            True, f"complete: full load merged in batch {full}"
        )
