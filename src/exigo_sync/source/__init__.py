"""Clients for the Exigo sync database: the one thing they do is run queue.Refresh."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

QUEUE_TABLES: tuple[str, ...] = (
    "Customers",
    "Orders",
    "OrderDetails",
    "Payments",
    "CustomerAccounts",
    "CustomerSites",
)


@dataclass(frozen=True)
class RefreshResult:
    """What one `exec queue.Refresh` call did, on the source clock."""

    requested_start: datetime | None
    refresh_started_at: datetime
    refresh_finished_at: datetime
    row_counts: dict[str, int] = field(default_factory=dict)


class SourceError(RuntimeError):
    """The source failed in a way retrying will not fix (bad schema, bad call)."""


class TransientSourceError(SourceError):
    """The source is unreachable or busy; retrying with backoff may succeed (B5)."""


class SourceClient(Protocol):
    def source_clock(self) -> datetime:
        """The source's own "now" (`getdate()`), naive."""
        ...

    def refresh(self, start: datetime | None) -> RefreshResult:
        """`exec queue.Refresh [start]`: replace the six queue tables."""
        ...

    def close(self) -> None: ...
