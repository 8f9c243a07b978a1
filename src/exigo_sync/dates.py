"""Parsing operator-supplied source-clock times ("2017-01-01", "1/1/2017", ISO datetimes)."""

from __future__ import annotations

from datetime import datetime

# US month/day/year, as in the vendor's own example `exec queue.Refresh '1/1/2017'`.
_US_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S.%f")


def parse_source_datetime(text: str) -> datetime:
    """A naive source-clock datetime from `text`; ValueError with a one-line reason otherwise.

    Exigo `datetime` values have no zone, so a time with a UTC offset is refused rather than
    silently converted to a zone the source may not use.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty date")
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for fmt in _US_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"cannot parse date {text!r}: use YYYY-MM-DD, M/D/YYYY or an ISO datetime")
    if parsed.tzinfo is not None:
        raise ValueError(
            f"date {text!r} has a UTC offset; source times are naive source-clock times"
        )
    return parsed
