"""Source activity on the simulated clock, generated set-based one sub-step (<= 1 hour) at a time.

Within a sub-step [t0, t1) every change gets a time in that range, and an existing row is only
picked if it was not already changed in this sub-step (ModifiedDate < t0), so a row changes at
most once per sub-step and ModifiedDate always moves forward. That time is when the change lands
in dbo; with a replication lag (ActivityRates.replication_lag) the rows are then back-dated to
when the change was made in the back office (see simulator.lag). All of this is on the
simulator's clock; with a local time zone (p["zone"]) the sub-step's stamps are then rewritten
to local wall time (see simulator.clocks).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb

from exigo_sync.simulator import clocks, customer_events, lag, order_events
from exigo_sync.simulator.rates import (
    ACTIVITY_KINDS,
    ActivityRates,
    ActivitySummary,
    lifecycle_params,
)

__all__ = [
    "ACTIVITY_KINDS",
    "ActivityRates",
    "ActivitySummary",
    "lifecycle_params",
    "run_substep",
]


def run_substep(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """All activity of one sub-step; `p` holds seed, step, t0, span_us, the next free ids
    (updated in place) and zone (the local time zone, or None)."""
    lagged = rates.replication_lag > timedelta(0)
    p["lag_us"] = lag.lag_us(rates.replication_lag) if lagged else 0
    if lagged:
        lag.remember_recent(con, p)
    if p.get("zone"):
        clocks.remember_recent(con, p)
    # Physical deletions first: every row still has ModifiedDate < t0, so a deleted row (and
    # what goes with it) was not changed earlier in this sub-step, and nothing later in it can
    # touch a deleted row or hang a new order or enrolment on a purged customer.
    customer_events.customer_purges(con, p, rates, summary)
    order_events.order_deletes(con, p, rates, summary)
    customer_events.account_deletes(con, p, rates, summary)
    customer_events.site_deletes(con, p, rates, summary)
    customer_events.new_customers(con, p, rates, summary)
    order_events.new_orders(con, p, rates, summary)
    order_events.progress_orders(con, p, rates, summary)
    order_events.returns(con, p, rates, summary)
    order_events.line_edits(con, p, rates, summary)
    order_events.line_removals(con, p, rates, summary)
    order_events.payment_deletes(con, p, rates, summary)
    customer_events.profile_edits(con, p, rates, summary)
    customer_events.status_changes(con, p, rates, summary)
    customer_events.account_changes(con, p, rates, summary)
    customer_events.site_edits(con, p, rates, summary)
    if lagged:
        lag.back_date(con, p)
    if p.get("zone"):
        clocks.stamp_local(con, p)
