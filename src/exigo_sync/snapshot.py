"""The fingerprint of a queue snapshot: what one `queue.Refresh` produced, recognisable wherever
the snapshot is read later (R3).

The queue tables are shared: any consumer's `queue.Refresh` replaces all six. exigo-sync takes a
fingerprint of each table in the same transaction as its own refresh, copies the snapshot into the
warehouse (the landing schemas), and takes the same fingerprint of the copy. Equal fingerprints
mean the copy is the snapshot this batch's refresh produced; a difference means another consumer
refreshed in between, and the batch refreshes again instead of merging someone else's window.

Per table: the row count, the sum of each key column, and the earliest and latest version time.
A rival's refresh selects another window (its "since the previous call" is not our start), so its
count and earliest time differ; a refresh with our very start a moment later can differ only by
rows changed since, which move the latest time. Integer sums and datetimes compare exactly across
engines (SQL Server, DuckDB), so the same SQL shape runs at the source and in the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exigo_sync.catalog import QUEUE_TABLES, REPLICATED_TABLES


@dataclass(frozen=True)
class TableFingerprint:
    rows: int
    key_sums: tuple[int, ...]
    earliest: datetime | None  # version time (None for a table without one, or empty)
    latest: datetime | None

    def describe(self) -> str:
        span = f", {self.earliest} .. {self.latest}" if self.earliest is not None else ""
        return f"{self.rows} rows{span}"


Fingerprint = Mapping[str, TableFingerprint]


def fingerprint_sql(table: str, relation: str, quote: Callable[[str], str]) -> str:
    """One row (count, key sums..., min and max version time) for queue table `table` read
    from `relation` (already quoted); `quote` quotes a column name for the engine."""
    t = REPLICATED_TABLES[table]
    sums = [f"SUM(CAST({quote(k)} AS BIGINT))" for k in t.key]
    vt = t.version_time_column
    times = [f"MIN({quote(vt)})", f"MAX({quote(vt)})"] if vt else ["NULL", "NULL"]
    return f"SELECT COUNT(*), {', '.join(sums)}, {', '.join(times)} FROM {relation}"


def from_row(row: Any) -> TableFingerprint:
    """A fingerprint from the row `fingerprint_sql` returns (sums of an empty table are NULL)."""
    count, *rest = row
    sums, (earliest, latest) = rest[:-2], rest[-2:]
    return TableFingerprint(
        rows=int(count),
        key_sums=tuple(int(s or 0) for s in sums),
        earliest=_naive(earliest),
        latest=_naive(latest),
    )


def differences(expected: Fingerprint, found: Fingerprint) -> list[str]:
    """Each queue table whose copy differs from the refresh's snapshot, in words."""
    out = []
    for table in QUEUE_TABLES:
        want, got = expected.get(table), found.get(table)
        if want != got:
            seen = got.describe() if got else "missing"
            refreshed = want.describe() if want else "not fingerprinted"
            out.append(f"queue.{table}: refreshed {refreshed}, copied {seen}")
    return out


def _naive(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"a version time came back as {type(value).__name__}: {value!r}")
    return value.replace(tzinfo=None)
