"""How much activity the simulator generates, and what it reports back."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ActivityRates:
    """Expected events per simulated hour (defaults suit ~1,000 customers), plus the order
    life-cycle: how long an order waits in each status and how often it fails instead, and the
    maximum replication lag: how much earlier than it lands in dbo a change may have been made
    (its ModifiedDate), as in a real Exigo Database Sync (0: every change lands at once).

    Physical deletions (rows vanish from dbo; see simulator.deletions for what each takes
    along) default to rare, as in a real back office: per simulated day, at ~1,000 customers
    (~3,000 orders and payments, ~250 sites), about 0.1-0.2% of the rows of each table.
    `customer_purges` deletes customer rows (with their account and site rows); a status change
    to 0 (Deleted, counted as `customers_deleted`) is Exigo's soft delete and keeps the row.
    """

    new_customers: float = 2.0
    profile_edits: float = 3.0
    status_changes: float = 0.6
    new_orders: float = 6.0
    returns: float = 0.25
    line_edits: float = 0.6
    line_removals: float = 0.4
    payment_deletes: float = 0.2
    account_changes: float = 1.0
    site_edits: float = 0.5
    decline_fraction: float = 0.04
    cancel_fraction: float = 0.03
    accept_after_minutes: tuple[float, float] = (5.0, 60.0)
    print_after_hours: tuple[float, float] = (2.0, 12.0)
    ship_after_hours: tuple[float, float] = (12.0, 36.0)
    replication_lag: timedelta = timedelta(0)
    # Added after the others so that positional construction keeps its meaning.
    customer_purges: float = 0.05
    order_deletes: float = 0.1
    account_deletes: float = 0.05
    site_deletes: float = 0.02

    def __post_init__(self) -> None:
        if not isinstance(self.replication_lag, timedelta):
            raise ValueError(f"replication_lag must be a timedelta: {self.replication_lag!r}")
        if self.replication_lag < timedelta(0):
            raise ValueError(f"replication_lag must not be negative: {self.replication_lag}")
        for f in fields(self):
            if f.name == "replication_lag":
                continue
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(v < 0 or math.isnan(v) for v in values):
                raise ValueError(f"rate {f.name} must not be negative: {value}")
        for name in ("decline_fraction", "cancel_fraction"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be between 0 and 1")

    def scaled(self, factor: float) -> ActivityRates:
        """These rates with every per-hour count multiplied by `factor`."""
        if factor < 0:
            raise ValueError("a rate scale must not be negative")
        return replace(self, **{name: getattr(self, name) * factor for name in PER_HOUR_RATES})


def lifecycle_params(rates: ActivityRates) -> dict[str, float]:
    """Order life-cycle waits (microseconds) and failure fractions as SQL parameters."""
    lo_a, hi_a = (m * 60e6 for m in rates.accept_after_minutes)
    lo_p, hi_p = (h * 3600e6 for h in rates.print_after_hours)
    lo_s, hi_s = (h * 3600e6 for h in rates.ship_after_hours)
    return {
        "lo_a": lo_a,
        "hi_a": hi_a,
        "lo_p": lo_p,
        "hi_p": hi_p,
        "lo_s": lo_s,
        "hi_s": hi_s,
        "decline": rates.decline_fraction,
        "cancel": rates.cancel_fraction,
    }


PER_HOUR_RATES = (
    "new_customers",
    "profile_edits",
    "status_changes",
    "new_orders",
    "returns",
    "line_edits",
    "line_removals",
    "payment_deletes",
    "account_changes",
    "site_edits",
    "customer_purges",
    "order_deletes",
    "account_deletes",
    "site_deletes",
)

ACTIVITY_KINDS: tuple[str, ...] = (
    "new_customers",
    "profile_edits",
    "status_changes",
    "customers_deleted",
    "new_orders",
    "new_order_lines",
    "orders_accepted",
    "orders_declined",
    "orders_cancelled",
    "orders_printed",
    "orders_shipped",
    "returns",
    "line_edits",
    "line_removals",
    "payments_created",
    "payments_deleted",
    "account_changes",
    "site_edits",
    "customers_purged",
    "orders_deleted",
    "accounts_deleted",
    "sites_deleted",
)


@dataclass
class ActivitySummary:
    """Events per kind during one advance. Deletion kinds count events: `customers_purged`
    (each with its account and site rows), `orders_deleted` (each with its lines),
    `line_removals`, `payments_deleted`, `accounts_deleted`, `sites_deleted`. `started_at` and
    `finished_at` are the advance's span on the simulator's clock (`simulation_time()`, UTC
    with a local time zone), which a server clock offset or a fall-back does not bend."""

    started_at: datetime
    finished_at: datetime
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIVITY_KINDS, 0))

    def add(self, kind: str, n: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def __getitem__(self, kind: str) -> int:
        return self.counts[kind]
