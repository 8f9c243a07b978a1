"""`SourceClient` for a real Exigo sync database on SQL Server.

Every call opens its own connection (dbt-sqlserver's way, `sqlserver.connect`:
autocommit, pooled) to the *sync* database, which may differ from the target's `database`
(co-located topology: the warehouse's server, database = the sync database's name), and closes
it at once, like the DuckDB client.

`refresh(start)` sends one batch:

    SET NOCOUNT ON; DECLARE @start datetime = ?; EXEC queue.Refresh @start

- The start is a bound parameter, never formatted into SQL (S1). It is first floored to a value
  SQL Server's `datetime` holds exactly (milliseconds ending in 0, 3 or 7; `to_sql_datetime`),
  so the conversion below neither rounds nor moves it later.
- `DECLARE @start datetime = ?` makes the server convert the parameter once, to `datetime`,
  whatever type the driver declares it as (pyodbc / mssql-python send a Python datetime as
  `datetime2`; FreeTDS under TDS 7.1 as `datetime`). The procedure then gets a `datetime`, and
  compares it with the `datetime` `ModifiedDate` columns as `datetime`, never as a `datetime2`
  that would turn .003 into .0033333 (pyodbc#1399; notes §4). `EXEC` takes no expression as an
  argument (no `EXEC queue.Refresh CAST(? AS datetime)`), hence the variable.
- `SET NOCOUNT ON` is inherited by the procedure, so its DML sends no row-count results; the
  results that still come are drained (`while cursor.nextset()`), so an error raised after them
  reaches us (pyodbc#69, #277).
- The refresh and the fingerprint of each queue table it produced (`exigo_sync.snapshot`: rows,
  key sums, earliest and latest ModifiedDate) run in ONE transaction: the procedure's DDL / DML
  locks on the queue tables are held until we commit, so another consumer's `queue.Refresh`
  waits instead of replacing the tables between our refresh and our fingerprint (R3).
- `refresh_started_at` / `refresh_finished_at` are `SYSDATETIME()` on the same connection just
  before and after, with `SYSUTCDATETIME()` (the server clock's offset from UTC, W1).

Every statement, and every fetch of `query()`'s cursor, runs through `sqlserver.cancel`: a stop
(SIGTERM, Ctrl-C, the flow timeout) cancels a statement waiting at the source, e.g. the refresh
behind another consumer's lock, instead of waiting for it (R4). `query_timeout` (the setting
EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS, else the profile's) bounds each statement; a statement
that runs out of it is a transient error naming the setting.

Driver errors become `TransientSourceError` (retried by the flow, B5) or `SourceError` through
`sqlserver.classify`, with one secret-free line naming what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exigo_sync import sqlserver as mssql
from exigo_sync.catalog import QUEUE_TABLES
from exigo_sync.profiles import ProfileError, Target
from exigo_sync.snapshot import fingerprint_sql, from_row
from exigo_sync.source import (
    ARROW_BATCH_ROWS,
    RefreshResult,
    SourceClock,
    SourceError,
    TransientSourceError,
)
from exigo_sync.sqlserver.cancel import StatementRunner

CLOCK_SQL = "SELECT SYSDATETIME()"
CLOCKS_SQL = "SELECT SYSDATETIME(), SYSUTCDATETIME()"
REFRESH_SQL = "SET NOCOUNT ON; DECLARE @start datetime = ?; EXEC queue.Refresh @start"
# The vendor's own default window ("since the previous call"), only when no start is given.
REFRESH_DEFAULT_SQL = "SET NOCOUNT ON; EXEC queue.Refresh"
PROCEDURE = "queue.Refresh"
# Where an operator sets the source's query timeout (exigo_sync.settings).
QUERY_TIMEOUT_SETTING = "EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS"
# The SQLSTATEs of a statement the driver ended at the query timeout.
TIMEOUT_SQLSTATES = ("HYT00", "HYT01")

# Rows per round trip when streaming a table (DB-API default arraysize is 1).
ARRAYSIZE = 5000


def quote_name(name: str) -> str:
    """A T-SQL identifier in brackets (a `]` inside doubled)."""
    return "[" + name.replace("]", "]]") + "]"


def fingerprint_query(table: str) -> str:
    """The fingerprint of one queue table (the name comes from the fixed QUEUE_TABLES)."""
    assert table in QUEUE_TABLES, table
    return fingerprint_sql(table, f"queue.{quote_name(table)}", quote_name)


def to_sql_datetime(value: datetime) -> datetime:
    """The latest SQL Server `datetime` value not after `value`: truncated to the millisecond,
    then down to the 1/300 s grid `datetime` stores (.000, .003, .007 within each 10 ms).
    Flooring, never rounding: a later start could skip a change made in between."""
    ms = value.microsecond // 1000
    ms -= {0: 0, 1: 1, 2: 2, 3: 0, 4: 1, 5: 2, 6: 3, 7: 0, 8: 1, 9: 2}[ms % 10]
    return value.replace(microsecond=ms * 1000)


class SqlServerSourceClient:
    """Runs `queue.Refresh` (and read-only queries) against an Exigo sync database."""

    def __init__(
        self,
        target: Target,
        *,
        database: str | None = None,
        query_timeout: int | None = None,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        """`database`: the sync database (default: the target's own `database`).
        `query_timeout`: seconds per statement, `queue.Refresh` included (the setting
        EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS; default: the profile's `query_timeout`;
        0 = none). `connect`: returns an open DB-API connection
        (default: dbt-sqlserver's way, to `database`); tests pass a recording double here."""
        self.target = target
        self.database = database or target.config.get("database")
        self.query_timeout = query_timeout
        self._connect = connect or (lambda: mssql.connect(target, database=self.database))

    # --- SourceClient -------------------------------------------------------------------------

    def source_clock(self) -> datetime:
        return self.clock().now

    def clock(self) -> SourceClock:
        with self._connection(_Step("read the source clock")) as run:
            cur = run.connection.cursor()
            row = run.run(cur, lambda: _one(cur, CLOCKS_SQL))
            now, utc = (self._datetime(v) for v in row)
        return SourceClock(now, utc)

    def refresh(self, start: datetime | None) -> RefreshResult:
        if start is not None and start.tzinfo is not None:
            raise SourceError("queue.Refresh start must be a naive source-clock time")
        bound = to_sql_datetime(start) if start is not None else None
        step = _Step(f"run {PROCEDURE}")
        with self._connection(step) as run:
            con = run.connection
            # One transaction from the refresh to the last fingerprint (R3); autocommit is set
            # before the first statement (pyodbc refuses to switch with results pending).
            con.autocommit = False
            try:
                cur = con.cursor()
                started = self._clock(run, cur)
                # Every result the procedure sends (row counts, result sets, the error after)
                # is drained in the same call: it may block behind a lock at any of them.
                run.run(cur, lambda: _drain(cur, bound))
                fingerprint = {}
                for table in QUEUE_TABLES:
                    step.action = f"fingerprint queue.{table}"
                    row = run.run(cur, lambda t=table: _one(cur, fingerprint_query(t)))
                    fingerprint[table] = from_row(row)
                step.action = "read the source clock"
                row = run.run(cur, lambda: _one(cur, CLOCKS_SQL))
                finished, utc = (self._datetime(v) for v in row)
                step.action = f"commit {PROCEDURE}"
                con.commit()
            except BaseException:
                run.rollback()
                raise
        counts = {table: fp.rows for table, fp in fingerprint.items()}
        return RefreshResult(
            bound, started, finished, counts, fingerprint, utc_offset=finished - utc
        )

    @contextmanager
    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """A read-only SELECT (e.g. a whole queue table, for landing): yields the executed
        cursor, `arraysize` set for `fetchmany()`; closed on exit. Driver errors raised while
        the caller fetches are mapped like any other."""
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head not in ("SELECT", "WITH"):
            raise SourceError(f"query() runs read-only SELECT statements, not {head or 'nothing'}")
        with self._connection(_Step("read the source")) as run:
            cur = run.connection.cursor()
            cur.arraysize = ARRAYSIZE
            if params:
                run.run(cur, lambda: cur.execute(sql, list(params)))
            else:
                run.run(cur, lambda: cur.execute(sql))
            try:
                yield _StoppableCursor(cur, run)
            finally:
                if not run.abandoned:
                    cur.close()

    @property
    def reads_arrow(self) -> bool:
        """mssql-python builds Arrow record batches in its C++ layer (`cursor.arrow_batch`);
        pyodbc has no Arrow fetch."""
        try:
            creds = mssql.credentials(self.target, self.database)
        except ProfileError:
            return False  # query() names the problem when it connects
        return mssql.backend(creds) == "mssql-python"

    @contextmanager
    def record_batches(
        self, sql: str, params: Sequence[Any] = (), *, batch_size: int = ARROW_BATCH_ROWS
    ) -> Iterator[Iterator[Any]]:
        """`query()`'s rows as Arrow record batches the driver builds (mssql-python only,
        `reads_arrow`), each fetch stoppable like any other statement."""
        if not self.reads_arrow:
            raise SourceError("Arrow record batches need `backend: mssql-python` in the profile")
        with self.query(sql, params) as cur:
            yield cur.record_batches(batch_size)

    def close(self) -> None:
        """Nothing to close: every call opens and closes its own connection."""

    def __enter__(self) -> SqlServerSourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ------------------------------------------------------------------------------

    def _clock(self, run: StatementRunner, cur: Any) -> datetime:
        row = run.run(cur, lambda: _one(cur, CLOCK_SQL))
        return self._datetime(row[0])

    def _datetime(self, value: Any) -> datetime:
        if not isinstance(value, datetime):
            # FreeTDS below TDS 7.3 hands datetime2 over as text.
            raise SourceError(
                f"SQL Server {self._where()}: SYSDATETIME() came back as "
                f"{type(value).__name__}, not a datetime: with FreeTDS set TDS_Version 7.4 "
                "(freetds.conf `tds version = 7.4` or TDSVER=7.4)"
            )
        return value.replace(tzinfo=None)

    @contextmanager
    def _connection(self, step: _Step) -> Iterator[StatementRunner]:
        """An open connection (query timeout applied) for one step, its statements run so that
        a stop cancels them (`sqlserver.cancel`); driver errors mapped."""
        run = None
        try:
            con = self._connect()
            run = StatementRunner(con)
            if self.query_timeout is not None:
                con.timeout = self.query_timeout
            yield run
        except SourceError:
            raise
        except ProfileError as exc:
            raise SourceError(self.target.scrub(str(exc))) from None
        except Exception as exc:
            if not mssql.is_driver_error(exc):
                raise
            raise self._error(exc, step.action) from None
        finally:
            if run is not None:
                run.close()  # the connection may be what failed: never raises

    def _error(self, exc: BaseException, action: str) -> SourceError:
        numbers = mssql.driver_error(exc).numbers
        message = mssql.describe(exc, self.target, action, database=self.database)
        if action == f"run {PROCEDURE}" and 229 in numbers:
            message = (
                f"EXECUTE permission denied on {PROCEDURE} in database '{self.database}': "
                f"GRANT EXECUTE ON OBJECT::{PROCEDURE} to the profile's login. {message}"
            )
        elif action == f"run {PROCEDURE}" and 2812 in numbers:
            message = (
                f"{PROCEDURE} not found in database '{self.database}': is it the Exigo sync "
                f"database? {message}"
            )
        timed_out = mssql.driver_error(exc).sqlstate in TIMEOUT_SQLSTATES
        if timed_out:  # B5: the next attempt may not wait behind the same lock
            message = f"{message}: {self._timeout_hint()}"
        message = self.target.scrub(message)
        if timed_out or mssql.classify(exc) == "transient":
            return TransientSourceError(message)
        return SourceError(message)

    def _timeout_hint(self) -> str:
        if self.query_timeout is not None:
            return (
                f"the statement ran past the query timeout ({QUERY_TIMEOUT_SETTING}="
                f"{self.query_timeout}); raise it, or set 0 for none"
            )
        profile = self.target.config.get("query_timeout")
        return (
            f"the statement ran past the source output's query_timeout ({profile} s); "
            f"{QUERY_TIMEOUT_SETTING} overrides it (0 = none)"
        )

    def _where(self) -> str:
        return mssql.endpoint(self.target, self.database)


def _one(cur: Any, sql: str) -> Any:
    """Run a one-row SELECT; its row."""
    cur.execute(sql)
    return cur.fetchone()


def _drain(cur: Any, bound: datetime | None) -> None:
    """EXEC queue.Refresh and every result it sends."""
    if bound is None:
        cur.execute(REFRESH_DEFAULT_SQL)
    else:
        cur.execute(REFRESH_SQL, [bound])
    while cur.nextset():
        pass


class _StoppableCursor:
    """The cursor `query()` yields: its fetches, which wait for the server too (rows locked by
    another session), run through the connection's StatementRunner."""

    def __init__(self, cursor: Any, run: StatementRunner) -> None:
        self._cursor = cursor
        self._run = run

    def fetchone(self) -> Any:
        return self._run.run(self._cursor, self._cursor.fetchone)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        n = size or self._cursor.arraysize
        return self._run.run(self._cursor, lambda: self._cursor.fetchmany(n))

    def fetchall(self) -> list[Any]:
        return self._run.run(self._cursor, self._cursor.fetchall)

    def record_batches(self, size: int) -> Iterator[Any]:
        """The rest of the result as Arrow record batches (mssql-python's `arrow_batch`, which
        answers an empty batch at the end)."""
        while True:
            batch = self._run.run(self._cursor, lambda: self._cursor.arrow_batch(size))
            if batch.num_rows == 0:
                return
            yield batch

    def __getattr__(self, name: str) -> Any:  # description, arraysize, rowcount, ...
        return getattr(self._cursor, name)


@dataclass
class _Step:
    """What the client is doing, for the error message if it fails."""

    action: str
