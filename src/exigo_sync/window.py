"""The refresh window and the watermark (W1-W3).

W3 is checked in two steps. `parse_since` runs before anything is opened: it refuses a `since`
that cannot be parsed or lies in the future. Whether `since` lies after the watermark can only be
known from the ledger, so `compute_window` refuses that after reading it, before the source is
touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exigo_sync.dates import parse_source_datetime

# W1: the start of a full initial load: before any data an Exigo back office holds (SQL Server's
# `datetime` starts in 1753). The vendor documents an early start as the way to re-sync.
FULL_LOAD_START = datetime(1900, 1, 1)

# The source clock is naive local time of the source server, whose zone we do not know; no zone
# is more than 14 hours ahead of UTC, so a `since` past that is in the future wherever it is.
_MAX_ZONE_AHEAD = timedelta(hours=14)


class WindowRefused(ValueError):
    """An operator's `since` would skip or invent changes (W3)."""


@dataclass(frozen=True)
class Window:
    start: datetime  # the explicit start passed to queue.Refresh (source clock)
    # "full" (first batch, everything) | "initial" (first batch, from a configured start:
    # partial) | "watermark" | "since" | "gap"
    kind: str
    watermark: datetime | None  # refresh start of the latest merged batch, if any


def parse_since(
    since: str | datetime | None, *, allow_gap: bool = False, now: datetime | None = None
) -> datetime | None:
    """Parse and sanity-check `since` without opening any connection (W3)."""
    if since is None or since == "":
        return None
    if isinstance(since, datetime):
        value = since
    else:
        try:
            value = parse_source_datetime(str(since))
        except ValueError as exc:
            raise WindowRefused(f"since={since!r} refused: {exc}; nothing was run") from None
    if value.tzinfo is not None:
        # Exigo datetimes are naive source-clock times; an explicit zone cannot be mapped.
        raise WindowRefused(
            f"since={since!r} carries a time zone; pass the source's local time without one"
        )
    limit = (now or datetime.now(UTC).replace(tzinfo=None)) + _MAX_ZONE_AHEAD
    if value > limit and not allow_gap:
        raise WindowRefused(
            f"since={value.isoformat()} lies in the future; nothing was run "
            "(pass allow_gap to force it)"
        )
    return value


def refuse_since_after_watermark(
    since: datetime | None, watermark: datetime | None, *, allow_gap: bool
) -> None:
    """W3: a `since` after the watermark would skip changes. Needs only the ledger, so the flow
    calls it before the source is touched."""
    if since is None or watermark is None or allow_gap or since <= watermark:
        return
    raise WindowRefused(
        f"since={since.isoformat()} lies after the watermark ({watermark.isoformat()}): "
        "changes in between would be skipped; nothing was refreshed "
        "(pass allow_gap to accept the gap)"
    )


def compute_window(
    *,
    since: datetime | None,
    watermark: datetime | None,
    source_now: datetime,
    overlap: timedelta,
    initial_start: datetime | None,
    initial_lookback: timedelta | None,
    allow_gap: bool = False,
) -> Window:
    """W1/W2: the explicit start for this batch's queue.Refresh.

    With no merged batch: a full load (kind "full"), unless the operator configured an initial
    start or lookback (kind "initial": the warehouse is partial until a full load merges).
    A `since` accepted only because of allow_gap is recorded as kind "gap", so the ledger shows
    which batches may have skipped changes.
    """
    if since is not None:
        if since > source_now and not allow_gap:
            raise WindowRefused(
                f"since={since.isoformat()} lies after the source clock "
                f"({source_now.isoformat()}); nothing was refreshed (pass allow_gap to force it)"
            )
        refuse_since_after_watermark(since, watermark, allow_gap=allow_gap)
        skips = since > source_now or (watermark is not None and since > watermark)
        if skips:
            return Window(since, "gap", watermark)
        # A replay from before any data is a full load: it makes a partial warehouse complete.
        return Window(since, "full" if since <= FULL_LOAD_START else "since", watermark)
    if watermark is not None:
        return Window(watermark - overlap, "watermark", watermark)
    if initial_start is not None:
        kind = "full" if initial_start <= FULL_LOAD_START else "initial"
        return Window(initial_start, kind, None)
    if initial_lookback is not None:  # the vendor's own first call: the last 24 hours
        return Window(source_now - initial_lookback, "initial", None)
    return Window(FULL_LOAD_START, "full", None)
