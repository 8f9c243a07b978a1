"""The refresh window and the watermark (W1-W3).

W3 is checked in two steps. `parse_since` runs before anything is opened: it refuses a `since`
that cannot be parsed or lies in the future. Whether `since` lies after the watermark can only be
known from the ledger, so `compute_window` refuses that after reading it, before the source is
touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exigo_sync.source.dates import parse_source_datetime

# The source clock is naive local time of the source server, whose zone we do not know; no zone
# is more than 14 hours ahead of UTC, so a `since` past that is in the future wherever it is.
_MAX_ZONE_AHEAD = timedelta(hours=14)


class WindowRefused(ValueError):
    """An operator's `since` would skip or invent changes (W3)."""


@dataclass(frozen=True)
class Window:
    start: datetime  # the explicit start passed to queue.Refresh (source clock)
    kind: str  # "watermark" | "initial" | "since"
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
    initial_lookback: timedelta,
    allow_gap: bool = False,
) -> Window:
    """W1/W2: the explicit start for this batch's queue.Refresh.

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
        return Window(since, "gap" if skips else "since", watermark)
    if watermark is not None:
        return Window(watermark - overlap, "watermark", watermark)
    start = initial_start if initial_start is not None else source_now - initial_lookback
    return Window(start, "initial", None)
