"""The Prefect 3 flow `exigo-sync`: one batch = one queue.Refresh + one dbt merge.

take the lock -> compute the window -> record the batch -> refresh the queue (ledger:
`refreshed`) -> pin the snapshot in the warehouse, and refresh again if another consumer replaced
it first (R3) -> merge with dbt -> record the statistics and mark `merged` -> publish the
analytics copy (DuckDB) -> release the lock -> publish a report.

Whatever stops a batch part-way (an error, SIGTERM or Ctrl-C, the flow timeout) marks it
`failed` while the lock is still held, then releases the lock; the watermark does not move.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from exigo_sync import dbt_runner, docs_site, hash_key, lookup_contents, view_definitions
from exigo_sync.batch import Batch
from exigo_sync.catalog import REPLICATED_ENTITY_NAMES
from exigo_sync.console import hide_detail
from exigo_sync.lookup_contents import LookupsPlan
from exigo_sync.report import BatchSummary, describe_sweep
from exigo_sync.settings import Settings, SettingsError
from exigo_sync.snapshot import differences
from exigo_sync.source import RefreshResult, TransientSourceError
from exigo_sync.topology import Topology
from exigo_sync.view_definitions import ViewsPlan
from exigo_sync.warehouse import analytics_copy, hash_keys, landing
from exigo_sync.warehouse.ledger import Completeness, EntityStats, Fence, Ledger
from exigo_sync.warehouse.lock import LockOptions, run_lock
from exigo_sync.window import (
    Window,
    clock_step,
    compute_window,
    parse_since,
    refuse_since_after_watermark,
)


def _retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    # B5: retry an unreachable/busy source; a bad call or bad schema will not heal by waiting.
    try:
        state.result()
    except TransientSourceError:
        return True
    except Exception:
        return False
    return False


def _flow_run_id() -> str | None:
    return str(flow_run.id) if flow_run.id else None


@task(name="compute window", cache_policy=NO_CACHE, retry_condition_fn=_retry_transient_only)
def compute_window_task(
    topology: Topology, settings: Settings, since: datetime | None, allow_gap: bool,
    overlap_minutes: float | None,
) -> Window:  # fmt: skip
    with Ledger.open(topology.warehouse) as ledger:
        watermark = ledger.watermark_detail()
    resume_at = watermark.resume_at if watermark else None
    # W3: a since after the watermark is refused before the source is touched.
    refuse_since_after_watermark(since, resume_at, allow_gap=allow_gap)
    client = topology.source_client()
    try:
        clock = client.clock()
    finally:
        client.close()
    step = clock_step(watermark, clock.utc_offset)
    if step:
        get_run_logger().warning(
            "a clock went back by %s since the last merged batch (the server's against UTC, or "
            "the data's against the server's): this window starts that much earlier (W1)",
            step,
        )
    return compute_window(
        since=since,
        watermark=resume_at,
        source_now=clock.now,
        overlap=settings.overlap_for(overlap_minutes),
        initial_start=settings.initial_start,
        initial_lookback=settings.initial_lookback,
        allow_gap=allow_gap,
        step_back=step,
    )


@task(name="start batch", cache_policy=NO_CACHE)
def start_batch(topology: Topology, fence: Fence, window: Window, reconcile: bool) -> int:
    """Ledger: a new batch, `refreshing`, before queue.Refresh is called."""
    with Ledger.open(topology.warehouse, fence=fence) as ledger:
        batch_id = ledger.start_batch(
            flow_run_id=_flow_run_id(), target_name=topology.warehouse.name,
            window_kind=window.kind, requested_start=window.start, reconciled=reconcile,
        )  # fmt: skip
    get_run_logger().info("batch %d: window %s", batch_id, describe_window(window))
    return batch_id


_WINDOW_KINDS = {
    "full": "full load: everything since {start}",
    "initial": "initial load from {start} (EXIGO_SYNC_INITIAL_*: the warehouse stays partial)",
    "watermark": "from {start} (the last merged batch, minus the overlap)",
    "since": "from {start} (--since / since)",
    "gap": "from {start} (--since past the watermark, --allow-gap / allow_gap)",
}


def describe_window(window: Window) -> str:
    """A window in an operator's words: "full load: everything since 1753-01-01 00:00:00"."""
    start = f"{window.start:%Y-%m-%d %H:%M:%S}"
    text = _WINDOW_KINDS.get(window.kind, "from {start} ({kind})").format(
        start=start, kind=window.kind
    )
    if window.clock_step:
        text += f", {window.clock_step} earlier for a clock that went back"
    return text


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.items())


@task(name="refresh queue", cache_policy=NO_CACHE, retry_condition_fn=_retry_transient_only)
def refresh_queue(
    topology: Topology, fence: Fence, batch_id: int, start: datetime
) -> RefreshResult:
    """`exec queue.Refresh @start`, always with an explicit start (W1); ledger: `refreshed`."""
    client = topology.source_client()
    try:
        result = client.refresh(start)
    finally:
        client.close()
    with Ledger.open(topology.warehouse, fence=fence) as ledger:
        ledger.mark_refreshed(batch_id, result)
    rows = sum(result.row_counts.values())
    get_run_logger().info(
        "batch %d: queue.Refresh gave %s queue rows (%s)",
        batch_id, f"{rows:,}", _counts(result.row_counts),
    )  # fmt: skip
    return result


@task(name="pin the snapshot", cache_policy=NO_CACHE, retry_condition_fn=_retry_transient_only)
def pin_snapshot(
    topology: Topology, fence: Fence, settings: Settings, batch_id: int, swept: list[str],
    refreshed: RefreshResult, window: Window,
) -> list[str]:  # fmt: skip
    """Copy the queue tables, the swept entities' dbo keys, the rows of keys back at the source
    (or, once the warehouse is complete, never received) and the lookups into the warehouse's
    landing schemas, where dbt reads them. Returns how the copy differs from the snapshot this
    batch's refresh produced: nothing, or the tables another consumer's refresh replaced. When
    it is ours, records where it leaves the data's clock (W1)."""
    with Ledger.open(topology.warehouse) as ledger:
        complete = ledger.completeness().complete
    started = time.monotonic()
    pinned = landing.pin(
        topology, batch_id, landing.tables_for_batch(swept), logger=get_run_logger(),
        policy=settings.sensitive_policy(), find_missing=complete, fence=fence,
    )  # fmt: skip
    get_run_logger().info(
        "batch %d: pinned %d tables, %s rows in %.1f s (%s)", batch_id, len(pinned.rows),
        f"{sum(pinned.rows.values()):,}", time.monotonic() - started,
        "streamed from the source" if topology.landed else "copied by the warehouse",
    )  # fmt: skip
    replaced = differences(refreshed.fingerprint, pinned.fingerprint)
    if not replaced:
        refreshed_at = refreshed.refresh_started_at
        high_water = landing.data_high_water(
            topology.warehouse, refreshed_at + settings.future_tolerance
        )
        with Ledger.open(topology.warehouse, fence=fence) as ledger:
            ledger.mark_pinned(batch_id, refreshed_at, high_water, window.start)
    return replaced


@task(name="merge with dbt", cache_policy=NO_CACHE)
def merge(
    build: dbt_runner.BatchBuild, queue_rows: int, batch_id: int | None = None
) -> dbt_runner.DbtOutcome:
    """`dbt build` of staging and everything downstream, of the batch the ledger has in flight
    (its id in dbt's environment); a reconciliation run also runs every data test on whole
    tables."""
    logger = get_run_logger()
    if build.threads is not None:
        logger.info("%d queue rows: dbt runs on %d thread(s)", queue_rows, build.threads)
    outcome = dbt_runner.run_build(build, logger=logger)
    logger.info("batch %s: dbt build: %s", batch_id, outcome.summary())
    return outcome


def plan_build(
    topology: Topology, fence: Fence, batch_id: int, build: dbt_runner.BatchBuild
) -> tuple[ViewsPlan, LookupsPlan]:
    """The views (marts) are recreated only when their definition may have changed
    (view_definitions); the lookups are merged only when they may have (lookup_contents)."""
    with Ledger.open(topology.warehouse, fence=fence) as ledger:
        views = view_definitions.plan_for_batch(ledger, batch_id, build)
        lookups = lookup_contents.plan_for_batch(ledger, batch_id, build, views.definitions)
    get_run_logger().info(
        "batch %d: the views are %s; the lookups are %s",
        batch_id, views.describe(), lookups.describe(),
    )  # fmt: skip
    return views, lookups


@task(name="record merged batch", cache_policy=NO_CACHE)
def record_merged(
    topology: Topology,
    fence: Fence,
    batch_id: int,
    invocation_id: str | None,
    views: ViewsPlan,
    lookups: LookupsPlan,
) -> list[EntityStats]:
    """Ledger: per-entity statistics and `merged`, together; the watermark moves (L2)."""
    with Ledger.open(topology.warehouse, fence=fence) as ledger:
        stats = ledger.compute_stats(batch_id)
        built = {
            "views": view_definitions.fingerprint_after_merge(ledger, views),
            "lookups": lookup_contents.fingerprint_after_merge(lookups),
        }
        fingerprints = {part: value for part, value in built.items() if value is not None}
        ledger.mark_merged(batch_id, invocation_id, stats, fingerprints)
    get_run_logger().info("batch %d merged: %s", batch_id, describe_stats(stats))
    return stats


def describe_stats(stats: list[EntityStats]) -> str:
    """What a merged batch wrote, in one line (the words of the batch report): keys first
    seen, other new versions, deletions, rejected rows; and each swept entity's deletions."""
    totals = {
        word: sum(getattr(s, column) for s in stats)
        for word, column in (
            ("inserted", "inserted"), ("changed", "changed"), ("deleted", "closed"),
            ("rejected", "rejected"),
        )
    }  # fmt: skip
    text = ", ".join(f"{n:,} {word}" for word, n in totals.items())
    swept = describe_sweep(stats)
    return f"{text}; key sweep: {swept}" if swept else text


@task(name="publish analytics copy", cache_policy=NO_CACHE)
def publish_analytics_copy(topology: Topology, settings: Settings) -> str | None:
    """DuckDB: replace the read-only copy analysts and BI tools open with the merged warehouse,
    so no reader ever holds the file the next batch writes. The batch is merged already: a copy
    that fails is a warning, never a failed batch (the previous copy stays)."""
    dest = analytics_copy.destination(topology.warehouse, settings.analytics_copy_path)
    if dest is None:
        return None
    try:
        return str(analytics_copy.publish(topology.warehouse, dest, get_run_logger()))
    except Exception as exc:
        get_run_logger().warning(
            "analytics copy not published (batch merged all the same): %s",
            topology.scrub(str(exc)),
        )
        return None


def _flow_timeout() -> float:
    """The flow timeout, read when the flow is defined (Prefect takes it there). A refused
    setting must not break importing the flow: the run itself then stops naming it."""
    try:
        return Settings.load().flow_timeout_seconds
    except SettingsError:
        return Settings.model_fields["flow_timeout_seconds"].default


@flow(name="exigo-sync", log_prints=False, timeout_seconds=_flow_timeout())
def exigo_sync(
    since: str | None = None,
    target: str | None = None,
    allow_gap: bool = False,
    overlap_minutes: float | None = None,
    dbt_select: str | None = None,
    reconcile: bool = False,
    confirm_deletions: list[str] | None = None,
) -> dict[str, Any]:
    """Sync one batch from the Exigo sync database into the warehouse. The rule codes below
    (W2, H9, ...) are explained in the project's docs/rules.md.

    Args:
        since: backfill/replay start on the source clock (ISO 8601); later runs resume (W2).
        target: dbt target of the warehouse (default: the profile's); the source is the
            profile's `source` output or the warehouse target itself (exigo_sync.topology).
        allow_gap: accept a `since` after the watermark or in the future (W3).
        overlap_minutes: override the window overlap for this run (default from settings).
        dbt_select: dbt selector for the merge (default: staging and everything downstream).
        reconcile: also reconcile every entity's keys with the source (deletions the queue
            cannot show, H7) and run every data test on whole tables; the nightly deployment.
        confirm_deletions: entities whose mass deletion the operator confirms for this run (H9).
    """
    settings = Settings.load()
    hide_detail(settings.verbose)  # this process's console: one line per step
    # W3: before any connection is opened, as the CLI checks its flags.
    since_at = parse_since(since, allow_gap=allow_gap)
    settings.overlap_for(overlap_minutes)
    # S2: a policy that hashes a column needs the HMAC key before anything runs.
    hashed = settings.sensitive_policy().hashed()
    hash_key.provide(hashed, settings.hash_key_block)
    topology = settings.topology_for(target)
    # dbt imports while the run takes the lock.
    dbt_runner.warm_up(topology.warehouse.type, target_path=settings.dbt_target_dir)
    swept = list(REPLICATED_ENTITY_NAMES) if reconcile else settings.sweep_entities
    batch = Batch(topology, get_run_logger(), flow_run_id=_flow_run_id(), reconcile=reconcile)
    lock_name = topology.lock_name(settings.source_name)

    with batch.run():
        batch.preflight()
        with run_lock(
            topology.warehouse, lock_name, flow_run_id=batch.flow_run_id,
            options=LockOptions.from_settings(settings, reconcile=reconcile),
        ) as lock, batch.holding(lock):  # fmt: skip
            with batch.step("window"):
                window = compute_window_task.with_options(**settings.source_retries())(
                    topology, settings, since_at, allow_gap, overlap_minutes
                )
            with batch.step("start batch"):
                batch.id = start_batch(topology, lock.fence, window, reconcile)
            for attempt in range(1, settings.snapshot_attempts + 1):
                with batch.step("refresh"):
                    result = refresh_queue.with_options(**settings.source_retries())(
                        topology, lock.fence, batch.id, window.start
                    )
                with batch.step("land"):
                    replaced = pin_snapshot.with_options(**settings.source_retries())(
                        topology, lock.fence, settings, batch.id, swept, result, window
                    )
                if not replaced:
                    break
                batch.snapshot_replaced(attempt, settings.snapshot_attempts, replaced)
            with batch.step("dbt"):
                queue_rows = sum(result.row_counts.values())
                build = settings.batch_build(
                    topology, swept=swept, confirm_deletions=confirm_deletions or [],
                    reconcile=reconcile, select=dbt_select, queue_rows=queue_rows,
                    env={
                        **lock.fence.dbt_env(),
                        **dbt_runner.batch_env(batch.id, result.refresh_started_at),
                    },
                )  # fmt: skip
                views, lookups = plan_build(topology, lock.fence, batch.id, build)
                with hash_keys.provided(topology.warehouse, bool(hashed)):
                    outcome = merge(lookups.apply(views.apply(build)), queue_rows, batch.id)
            with batch.step("ledger"):
                stats = record_merged(
                    topology, lock.fence, batch.id, outcome.invocation_id, views, lookups
                )
            with batch.step("analytics copy"):
                analytics = publish_analytics_copy(topology, settings)

    summary = BatchSummary(
        batch.id, window, result, stats, reconcile, _completeness(topology), outcome,
        batch.timings, docs_site.site_index(settings, topology.warehouse.name), analytics,
    )  # fmt: skip
    _publish_report(summary)
    return summary.as_dict()


def _completeness(topology: Topology) -> Completeness:
    with Ledger.open(topology.warehouse) as ledger:
        return ledger.completeness()


def _publish_report(summary: BatchSummary) -> None:
    # The batch is merged already: a failing report must not fail (or un-merge) it.
    try:
        create_markdown_artifact(
            key="exigo-sync-batch",
            markdown=summary.markdown(),
            description=f"exigo-sync batch {summary.batch_id}",
        )
    except Exception as exc:
        get_run_logger().warning("could not publish the batch report: %s", exc)
