"""The refresh window and the watermark (W1-W3).

The window must hold on the clock that stamps ModifiedDate (the data's clock), which need not be
the sync server's clock. So a batch leaves two marks: the server-clock time its refresh began,
and the latest stamp its pinned snapshot held (its "data high water", never a stamp beyond the
future tolerance, W4). The next window resumes from the EARLIER of the two, minus the overlap:
a server running ahead of the data (a UTC server, Exigo stamping local time) no longer skips the
rows stamped in between, and a single stamp run ahead cannot carry the window past real changes.
It then goes back further by however far a clock went back since (`clock_step`): the server's
own clock against its UTC clock (a daylight-saving fall-back on a local-time server), and the
data's clock against the server's (the lead the latest batch measured fell below the largest of
the day before: a fall-back of the data's clock; at most an hour, the size of a daylight-saving
step, so a quiet night costs no more than an hour of re-delivered rows). Re-delivered rows merge
as no-ops (H4): a window that starts early costs time, never correctness.

W3 is checked in two steps. `parse_since` runs before anything is opened: it refuses a `since`
that cannot be parsed or lies in the future. Whether `since` lies after the watermark can only be
known from the ledger, so `compute_window` refuses that after reading it, before the source is
touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exigo_sync.dates import parse_source_datetime

# W4: the start of a full initial load: SQL Server's earliest `datetime` (a common sentinel for
# "no date"), so no dated row is skipped. The vendor documents an early start as the way to
# re-sync.
FULL_LOAD_START = datetime(1753, 1, 1)
# The largest step a data clock takes back that the window follows by itself: a daylight-saving
# fall-back (an hour; half an hour in a few zones). Larger drops of the measured lead are long
# quiet periods (W1 above).
MAX_DATA_CLOCK_STEP = timedelta(hours=1)
# Clock noise below this is not a step (readings a moment apart, rounding).
CLOCK_STEP_NOISE = timedelta(minutes=1)

# How an operator overrides a W3 refusal, named for each way a run is started.
ALLOW_GAP = "pass --allow-gap to `exigo-sync run`, or the flow parameter allow_gap=true"

# The source clock is naive local time of the source server, whose zone we do not know; no zone
# is more than 14 hours ahead of UTC, so a `since` past that is in the future wherever it is.
_MAX_ZONE_AHEAD = timedelta(hours=14)


class WindowRefused(ValueError):
    """An operator's `since` would skip or invent changes (W3)."""


@dataclass(frozen=True)
class Watermark:
    """Where the latest merged batch left the sync (W1)."""

    resume_at: datetime  # the earlier of its refresh start and its data high water
    refresh_started_at: datetime  # the server's clock when its refresh began
    utc_offset: timedelta | None  # the server's local clock minus its UTC clock then
    data_lead: timedelta | None  # its data high water minus its refresh start (None: no rows)
    reference_lead: timedelta | None  # the largest data lead of the day of batches before it


@dataclass(frozen=True)
class Window:
    start: datetime  # the explicit start passed to queue.Refresh (source clock)
    # "full" (first batch, everything) | "initial" (first batch, from a configured start:
    # partial) | "watermark" | "since" | "gap"
    kind: str
    watermark: datetime | None  # where the latest merged batch left the sync, if any
    clock_step: timedelta = timedelta(0)  # how much earlier a clock gone back moved the start


def describe_clocks(watermark: Watermark | None) -> str:
    """What the latest merged batch measured of the two clocks (W1), for `status` and `check`."""
    if watermark is None:
        return "not measured yet: every batch measures them at its refresh"
    parts = []
    if watermark.utc_offset is not None:
        parts.append(f"the sync server's clock is UTC{_signed(watermark.utc_offset)}")
    if watermark.data_lead is None:
        parts.append("the latest batch held no dated change to read the data's clock from")
    elif abs(watermark.data_lead) < timedelta(minutes=1):
        parts.append("the latest change it held was stamped within a minute of its refresh")
    else:
        relation = "before" if watermark.data_lead < timedelta(0) else "after"
        parts.append(
            f"the latest change it held was stamped {_duration(abs(watermark.data_lead))} "
            f"{relation} its refresh on the server's clock (ModifiedDate on another clock, or "
            "nothing changed for that long)"
        )
    parts.append(f"the next window resumes from {watermark.resume_at:%Y-%m-%d %H:%M:%S}")
    return "; ".join(parts)


def _signed(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else "+"
    minutes = round(abs(delta).total_seconds() / 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _duration(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def clock_step(watermark: Watermark | None, server_utc_offset: timedelta | None) -> timedelta:
    """How far the clocks went back since the watermark's batch (see the module docstring): the
    server's clock against its UTC clock, plus the data's clock against the server's (capped at
    MAX_DATA_CLOCK_STEP). Zero when nothing went back, or nothing was measured."""
    if watermark is None:
        return timedelta(0)
    step = timedelta(0)
    if watermark.utc_offset is not None and server_utc_offset is not None:
        server_back = watermark.utc_offset - server_utc_offset
        if server_back > CLOCK_STEP_NOISE:
            step += server_back
    if watermark.data_lead is not None and watermark.reference_lead is not None:
        data_back = watermark.reference_lead - watermark.data_lead
        if data_back > CLOCK_STEP_NOISE:
            step += min(data_back, MAX_DATA_CLOCK_STEP)
    return step


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
            f"({ALLOW_GAP} to force it)"
        )
    return value


def overlap_option(minutes: float | None, default: timedelta) -> timedelta:
    """W3: a run's window overlap, from the `--overlap-minutes` flag or the `overlap_minutes`
    deployment parameter, else the setting: refused the same way wherever it comes from (a
    negative overlap would start the window after the watermark and skip changes)."""
    if minutes is None:
        return default
    if not math.isfinite(minutes) or minutes < 0:
        raise WindowRefused(
            f"overlap_minutes={minutes!r} refused: the overlap is 0 or more minutes (a negative "
            "one starts the window after the watermark and skips changes); nothing was run "
            "(--overlap-minutes, the overlap_minutes parameter, EXIGO_SYNC_OVERLAP_MINUTES)"
        )
    return timedelta(minutes=minutes)


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
        f"({ALLOW_GAP} to accept the gap)"
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
    step_back: timedelta = timedelta(0),
) -> Window:
    """W1/W2: the explicit start for this batch's queue.Refresh. `watermark` is where the latest
    merged batch left the sync (Watermark.resume_at); `step_back` how far a clock went back
    since (`clock_step`).

    With no merged batch: a full load (kind "full"), unless the operator configured an initial
    start or lookback (kind "initial": the warehouse is partial until a full load merges).
    A `since` accepted only because of allow_gap is recorded as kind "gap", so the ledger shows
    which batches may have skipped changes.
    """
    if since is not None:
        if since > source_now and not allow_gap:
            raise WindowRefused(
                f"since={since.isoformat()} lies after the source clock "
                f"({source_now.isoformat()}); nothing was refreshed ({ALLOW_GAP} to force it)"
            )
        refuse_since_after_watermark(since, watermark, allow_gap=allow_gap)
        skips = since > source_now or (watermark is not None and since > watermark)
        if skips:
            return Window(since, "gap", watermark)
        # A replay from before any data is a full load: it makes a partial warehouse complete.
        return Window(since, "full" if since <= FULL_LOAD_START else "since", watermark)
    if watermark is not None:
        return Window(watermark - overlap - step_back, "watermark", watermark, step_back)
    if initial_start is not None:
        if initial_start > source_now and not allow_gap:
            raise WindowRefused(
                f"EXIGO_SYNC_INITIAL_START={initial_start.isoformat()} lies after the source "
                f"clock ({source_now.isoformat()}): the first batch would load nothing that "
                "exists; nothing was refreshed (W3)"
            )
        kind = "full" if initial_start <= FULL_LOAD_START else "initial"
        return Window(initial_start, kind, None)
    if initial_lookback is not None:  # the vendor's own first call: the last 24 hours
        return Window(source_now - initial_lookback, "initial", None)
    return Window(FULL_LOAD_START, "full", None)
