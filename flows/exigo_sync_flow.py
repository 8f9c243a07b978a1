"""The Prefect 3 flow `exigo-sync`: one batch = one queue.Refresh + one dbt merge.

take the lock -> compute the window -> refresh the queue -> record it -> merge with dbt
-> record the statistics and mark `merged` -> publish a report -> release the lock.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from exigo_sync import dbt_invoke
from exigo_sync.profiles import Target, load_target
from exigo_sync.report import batch_markdown
from exigo_sync.settings import Settings, fault
from exigo_sync.source import RefreshResult, TransientSourceError
from exigo_sync.warehouse import ledger
from exigo_sync.warehouse.lock import run_lock
from exigo_sync.window import Window, compute_window, parse_since, refuse_since_after_watermark


class SyncFailed(RuntimeError):
    """The batch failed; the message is secret-free and says where."""


def _retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    # B5: retry an unreachable/busy source; a bad call or bad schema will not heal by waiting.
    try:
        state.result()
    except TransientSourceError:
        return True
    except Exception:
        return False
    return False


@task(name="compute window", cache_policy=NO_CACHE)
def compute_window_task(
    target: Target, settings: Settings, since: datetime | None, allow_gap: bool,
    overlap_minutes: float | None,
) -> Window:  # fmt: skip
    watermark = ledger.watermark(target)
    # W3: a since after the watermark is refused before the source is touched.
    refuse_since_after_watermark(since, watermark, allow_gap=allow_gap)
    client = target.source_client()
    try:
        source_now = client.source_clock()
    finally:
        client.close()
    overlap = (
        timedelta(minutes=overlap_minutes) if overlap_minutes is not None else settings.overlap
    )
    return compute_window(
        since=since,
        watermark=watermark,
        source_now=source_now,
        overlap=overlap,
        initial_start=settings.initial_start,
        initial_lookback=settings.initial_lookback,
        allow_gap=allow_gap,
    )


@task(name="refresh queue", cache_policy=NO_CACHE, retry_condition_fn=_retry_transient_only)
def refresh_queue(target: Target, start: datetime) -> RefreshResult:
    """`exec queue.Refresh @start`: always an explicit start (W1)."""
    client = target.source_client()
    try:
        return client.refresh(start)
    finally:
        client.close()


@task(name="merge with dbt", cache_policy=NO_CACHE)
def merge(
    settings: Settings, target: Target, batch_id: int, refreshed_at: datetime, select: str | None
) -> dbt_invoke.DbtOutcome:
    return dbt_invoke.run_build(
        project_dir=settings.dbt_project_dir,
        profiles_dir=settings.profiles_dir,
        target=target.name,
        batch_id=batch_id,
        refreshed_at=refreshed_at,
        select=select,
        exclude=settings.dbt_exclude,
    )


@task(name="record merged batch", cache_policy=NO_CACHE)
def record_merged(target: Target, batch_id: int, invocation_id: str | None) -> list:
    stats = ledger.compute_stats(target, batch_id)
    ledger.mark_merged(target, batch_id, invocation_id, stats)
    return stats


@flow(name="exigo-sync", log_prints=False)
def exigo_sync(
    since: str | None = None,
    target: str | None = None,
    allow_gap: bool = False,
    overlap_minutes: float | None = None,
    dbt_select: str | None = None,
) -> dict[str, Any]:
    """Sync one batch from the Exigo sync database into the warehouse.

    Args:
        since: backfill/replay start on the source clock (ISO 8601); later runs resume (W2).
        target: dbt target (default: the profile's); the source comes from the same target.
        allow_gap: accept a `since` after the watermark or in the future (W3).
        overlap_minutes: override the window overlap for this run (default from settings).
        dbt_select: dbt selector for the merge (default: staging and everything downstream).
    """
    logger = get_run_logger()
    settings = Settings()
    # W3: refuse a bad `since` before any connection is opened.
    since_at = parse_since(since, allow_gap=allow_gap)
    tgt = load_target(settings.profiles_dir, settings.profile, target or settings.target)
    run_id = str(flow_run.id) if flow_run.id else None
    timings: dict[str, float] = {}
    batch_id: int | None = None
    step = "lock"
    try:
        t0 = time.monotonic()
        with run_lock(
            tgt, tgt.lock_name(settings.source_name), flow_run_id=run_id,
            timeout=settings.lock_timeout_seconds, stale_after=settings.stale_after,
            poll=settings.lock_poll_seconds,
        ) as lock:  # fmt: skip
            if lock.abandoned_batches:
                logger.warning(
                    "marked %d abandoned in-flight batch(es) failed", lock.abandoned_batches
                )
            timings["lock"] = time.monotonic() - t0
            try:
                step = "window"
                window = compute_window_task(tgt, settings, since_at, allow_gap, overlap_minutes)
                batch_id = ledger.start_batch(
                    tgt, flow_run_id=run_id, window_kind=window.kind, requested_start=window.start
                )
                logger.info(
                    "batch %d: queue.Refresh from %s (%s)", batch_id, window.start, window.kind
                )

                step = "refresh"
                fault("before_refresh")
                t0 = time.monotonic()
                result = refresh_queue.with_options(
                    retries=settings.refresh_retries, retry_delay_seconds=settings.retry_delays()
                )(tgt, window.start)
                ledger.mark_refreshed(tgt, batch_id, result)
                timings["refresh"] = time.monotonic() - t0
                fault("after_refresh")

                step = "dbt"
                lock.heartbeat()
                t0 = time.monotonic()
                select = dbt_select or settings.dbt_select
                outcome = merge(settings, tgt, batch_id, result.refresh_started_at, select)
                timings["dbt"] = time.monotonic() - t0
                fault("after_dbt")

                step = "ledger"
                lock.heartbeat()
                t0 = time.monotonic()
                stats = record_merged(tgt, batch_id, outcome.invocation_id)
                timings["ledger"] = time.monotonic() - t0
            except Exception as exc:
                # Recorded while we still hold the lock: a rival must not see it in flight.
                if batch_id is not None:
                    _record_failure(tgt, batch_id, _describe(tgt, exc), exc)
                raise
    except Exception as exc:
        message = _describe(tgt, exc)
        if batch_id is not None:
            raise SyncFailed(
                f"batch {batch_id} failed at step '{step}' (watermark unchanged): {message}"
            ) from None
        raise SyncFailed(f"exigo-sync failed at step '{step}': {message}") from None
    _publish_report(batch_id, window, result, stats, timings)
    return {
        "batch_id": batch_id,
        "window_start": window.start.isoformat(),
        "window_kind": window.kind,
        "row_counts": dict(result.row_counts),
        "stats": [s.__dict__ for s in stats],
    }


def _describe(tgt: Target, exc: Exception) -> str:
    return tgt.scrub(f"{type(exc).__name__}: {exc}")


def _publish_report(
    batch_id: int, window: Window, result: RefreshResult, stats: list, timings: dict[str, float]
) -> None:
    # The batch is merged already: a failing report must not fail (or un-merge) it.
    try:
        create_markdown_artifact(
            key="exigo-sync-batch",
            markdown=batch_markdown(batch_id, window, result, stats, timings),
            description=f"exigo-sync batch {batch_id}",
        )
    except Exception as exc:
        get_run_logger().warning("could not publish the batch report: %s", exc)


def _record_failure(tgt: Target, batch_id: int, message: str, exc: Exception) -> None:
    invocation_id = getattr(exc, "invocation_id", None)
    try:
        ledger.mark_failed(tgt, batch_id, message, invocation_id)
    except Exception as ledger_exc:  # the warehouse may be what failed; the next run abandons it
        get_run_logger().error("could not record the failure in the ledger: %s", ledger_exc)
