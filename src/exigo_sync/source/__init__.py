"""Clients for the Exigo sync database: they run queue.Refresh and read the source."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from exigo_sync.snapshot import TableFingerprint

# Rows per round trip when a caller streams a `query()` cursor: `fetchmany(FETCH_SIZE)` (the
# SQL Server client also sets it as the cursor's `arraysize`; DuckDB cursors have none).
FETCH_SIZE = 5000
# Rows per Arrow record batch (`record_batches`): no Python object per value, so a batch can be
# larger; at the widest table (Customers, ~1 KB a row) still tens of MB.
ARROW_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class RefreshResult:
    """What one `exec queue.Refresh` call did, on the source clock."""

    requested_start: datetime | None
    refresh_started_at: datetime
    refresh_finished_at: datetime
    row_counts: dict[str, int] = field(default_factory=dict)
    # Each queue table's fingerprint, taken in the same transaction as the refresh (R3).
    fingerprint: dict[str, TableFingerprint] = field(default_factory=dict)
    # The server's local clock minus its UTC clock at the refresh (SYSDATETIME() -
    # SYSUTCDATETIME()): a drop between batches is the server's clock going back (W1).
    utc_offset: timedelta | None = None


@dataclass(frozen=True)
class SourceClock:
    """The sync server's clock, read once: SYSDATETIME() and SYSUTCDATETIME()."""

    now: datetime  # the server's local clock (what queue.Refresh and `since` are on)
    utc: datetime

    @property
    def utc_offset(self) -> timedelta:
        """Local minus UTC: a drop between two readings is the server's clock going back (a
        daylight-saving fall-back on a local-time server, W1)."""
        return self.now - self.utc


class SourceError(RuntimeError):
    """The source failed in a way retrying will not fix (bad schema, bad call)."""


class TransientSourceError(SourceError):
    """The source is unreachable or busy; retrying with backoff may succeed (B5)."""


class SourceClient(Protocol):
    def source_clock(self) -> datetime:
        """The source's own "now" (`getdate()`), naive."""
        ...

    def clock(self) -> SourceClock:
        """The source's local and UTC clocks, read together."""
        ...

    def refresh(self, start: datetime | None) -> RefreshResult:
        """`exec queue.Refresh [start]`: replace the six queue tables."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> AbstractContextManager[Any]:
        """A read-only SELECT against the source (e.g. a whole queue table, to land it in a
        warehouse elsewhere): a context manager yielding the executed DB-API cursor
        (`description`, `fetchmany(FETCH_SIZE)`), closed on exit. `?` parameters, one sequence;
        SQL in the source's dialect."""
        ...

    @property
    def reads_arrow(self) -> bool:
        """Whether `record_batches` works: the driver in use builds Arrow record batches itself
        (DuckDB; mssql-python), so rows reach a DuckDB warehouse without a Python object per
        value."""
        ...

    def record_batches(
        self, sql: str, params: Sequence[Any] = (), *, batch_size: int = ARROW_BATCH_ROWS
    ) -> AbstractContextManager[Iterator[Any]]:
        """The same read-only SELECT as `query()`, its rows as an iterator of Arrow record
        batches of up to `batch_size` rows, built by the driver (only when `reads_arrow`)."""
        ...

    def close(self) -> None: ...
