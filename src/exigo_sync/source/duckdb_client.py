"""`SourceClient` for a simulator file: the DuckDB stand-in for an Exigo sync database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from exigo_sync.simulator.clocks import sim_utc_clock
from exigo_sync.simulator.db import connect, cursor
from exigo_sync.simulator.refresh import run_refresh, sim_clock
from exigo_sync.source import (
    ARROW_BATCH_ROWS,
    RefreshResult,
    SourceClock,
    SourceError,
    TransientSourceError,
)

# Messages DuckDB gives when another process (or another connection of this process with a
# different configuration, e.g. dbt's read-only attach) holds the file: busy, worth a retry.
_BUSY_MARKERS = (
    "could not set lock",
    "conflicting lock",
    "resource temporarily unavailable",
    "different configuration",
    "database is locked",
    "file is already open",
)


class DuckDbSourceClient:
    """Runs `queue.Refresh` against a simulator file. Holds no connection between calls, so
    dbt can attach the file right after a refresh."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def source_clock(self) -> datetime:
        return self.clock().now

    def clock(self) -> SourceClock:
        with self._guard("read the source clock"):
            self._check_file()
            with connect(self.path, read_only=True) as con:
                self._check_schema(con)
                return SourceClock(sim_clock(con), sim_utc_clock(con))

    def refresh(self, start: datetime | None) -> RefreshResult:
        with self._guard("run queue.Refresh"):
            self._check_file()
            if start is not None and start.tzinfo is not None:
                raise SourceError("queue.Refresh start must be a naive source-clock time")
            with connect(self.path) as con:
                self._check_schema(con)
                done = run_refresh(con, start)
        return RefreshResult(
            done.requested_start, done.refresh_started_at, done.refresh_finished_at,
            dict(done.row_counts), dict(done.fingerprint), done.utc_offset,
        )  # fmt: skip

    @contextmanager
    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """A read-only SELECT on the simulator file: yields the executed DuckDB cursor (call
        `fetchmany(FETCH_SIZE)`: DuckDB cursors have no `arraysize`); the file is closed on
        exit, so dbt can attach it right after."""
        with self._guard("read the source"):
            self._check_file()
            with connect(self.path, read_only=True) as con:
                cur = cursor(con)
                try:
                    yield cur.execute(sql, list(params))
                finally:
                    cur.close()

    # DuckDB hands a result over as Arrow record batches itself.
    reads_arrow = True

    @contextmanager
    def record_batches(
        self, sql: str, params: Sequence[Any] = (), *, batch_size: int = ARROW_BATCH_ROWS
    ) -> Iterator[Iterator[Any]]:
        """`query()`'s rows as Arrow record batches of up to `batch_size` rows: DuckDB's own
        reader over a relation (one batch in memory at a time; a DB-API cursor's Arrow output
        would copy the whole result first)."""
        with self._guard("read the source"):
            self._check_file()
            with connect(self.path, read_only=True) as con:
                relation = con.sql(sql, params=list(params) or None)
                # DuckDB 2 names it to_arrow_reader; 1.x fetch_record_batch.
                reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
                yield iter(reader(batch_size))

    def close(self) -> None:
        """Nothing to close: every call opens and closes its own connection."""

    def __enter__(self) -> DuckDbSourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ----------------------------------------------------------------------------

    def _check_file(self) -> None:
        # duckdb.connect() would silently create an empty database at a wrong path.
        if not self.path.is_file():
            raise SourceError(f"source database not found: {self.path}")

    def _check_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        rows = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() "
            "AND table_schema IN ('queue', 'sim', 'dbo')"
        ).fetchall()
        present = {r[0] for r in rows}
        for needed in ("queue.RefreshState", "sim.Clock", "dbo.Orders"):
            if needed not in present:
                raise SourceError(
                    f"{self.path} is not an Exigo sync simulator database: {needed} is missing"
                )

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Translate DuckDB errors: a locked / busy / unreadable file is transient (B5 retries
        it); anything else, e.g. a missing queue table, is a plain SourceError."""
        try:
            yield
        except SourceError:
            raise
        except duckdb.Error as exc:
            text = _first_line(str(exc))
            where = f"{self.path}: could not {action}"
            busy = any(m in text.lower() for m in _BUSY_MARKERS)
            if busy:
                raise TransientSourceError(f"{where}: source busy ({text})") from exc
            if isinstance(exc, duckdb.IOException | duckdb.ConnectionException):
                raise TransientSourceError(f"{where}: {text}") from exc
            raise SourceError(f"{where}: {text}") from exc


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
