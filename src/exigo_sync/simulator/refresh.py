"""`exec queue.Refresh [start]` with the vendor's semantics, on an open connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from exigo_sync.catalog import QUEUE_TABLES, REPLICATED_TABLES
from exigo_sync.simulator.clocks import sim_clock, sim_utc_clock
from exigo_sync.simulator.db import quote, scalar
from exigo_sync.snapshot import TableFingerprint, fingerprint_sql, from_row


@dataclass(frozen=True)
class SimulatedRefresh:
    """What one `exec queue.Refresh` call did, on the simulated server clock."""

    requested_start: datetime | None
    refresh_started_at: datetime
    refresh_finished_at: datetime
    row_counts: dict[str, int] = field(default_factory=dict)
    # Each queue table's fingerprint, taken inside the refresh's transaction (R3).
    fingerprint: dict[str, TableFingerprint] = field(default_factory=dict)
    # SYSDATETIME() - SYSUTCDATETIME() at the refresh: the server clock's offset from UTC.
    utc_offset: timedelta | None = None


# sim_clock (the server's clock) lives in simulator.clocks; the source client imports it here.
__all__ = ["FIRST_CALL_LOOKBACK", "run_refresh", "sim_clock"]

# The vendor note: the first call ever "pulls in the last 24 hours of changes".
FIRST_CALL_LOOKBACK = timedelta(hours=24)


def run_refresh(con: duckdb.DuckDBPyConnection, start: datetime | None) -> SimulatedRefresh:
    """Replace the six queue tables whole, in one transaction, then record this call's time as
    the "previous call" every later call without a start resumes from. That time, the
    first call's 24 hours and the returned started/finished times are on the server's clock
    (`sim_clock`); the filter is on ModifiedDate, the data's clock (see simulator.clocks).

    - no start, first call ever: ModifiedDate >= now - 24 h
    - no start, later call: ModifiedDate >= time of the previous call (anyone's)
    - explicit start: ModifiedDate >= start
    OrderDetails has no timestamp: it gets every current line of each order in queue.Orders.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        now = sim_clock(con)
        utc_offset = now - sim_utc_clock(con)
        row = con.execute("SELECT LastRefresh FROM queue.RefreshState").fetchone()
        last = row[0] if row else None
        if start is not None:
            effective = start
        elif last is not None:
            effective = last
        else:
            effective = now - FIRST_CALL_LOOKBACK

        counts: dict[str, int] = {}
        for name in QUEUE_TABLES:
            table = REPLICATED_TABLES[name]
            q = quote(name)
            # CREATE OR REPLACE ... AS SELECT *: like the procedure's SELECT INTO, the queue
            # table takes dbo's columns as they are now (a column added or dropped at the source
            # shows up in the next refresh).
            if table.version_time_column is not None:
                vt = quote(table.version_time_column)
                con.execute(
                    f"CREATE OR REPLACE TABLE queue.{q} AS SELECT * FROM dbo.{q} WHERE {vt} >= ?",
                    [effective],
                )
            else:
                con.execute(
                    f"CREATE OR REPLACE TABLE queue.{q} AS SELECT d.* FROM dbo.{q} d "
                    "WHERE d.OrderID IN (SELECT OrderID FROM queue.Orders)"
                )
            counts[name] = int(scalar(con, f"SELECT count(*) FROM queue.{q}"))

        fingerprint = {
            name: from_row(
                con.execute(fingerprint_sql(name, f"queue.{quote(name)}", quote)).fetchone()
            )
            for name in QUEUE_TABLES
        }
        con.execute("UPDATE queue.RefreshState SET LastRefresh = ?", [now])
        con.execute("INSERT INTO sim.RefreshLog VALUES (?, ?, ?)", [now, start, effective])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return SimulatedRefresh(
        requested_start=start,
        refresh_started_at=now,
        refresh_finished_at=now,
        row_counts=counts,
        fingerprint=fingerprint,
        utc_offset=utc_offset,
    )
