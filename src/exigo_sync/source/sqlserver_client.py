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

Driver errors become `TransientSourceError` (retried by the flow, B5) or `SourceError` through
`sqlserver.classify`, with one secret-free line naming what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exigo_sync import sqlserver as mssql
from exigo_sync.catalog import QUEUE_TABLES
from exigo_sync.profiles import ProfileError, Target
from exigo_sync.snapshot import fingerprint_sql, from_row
from exigo_sync.source import RefreshResult, SourceClock, SourceError, TransientSourceError

CLOCK_SQL = "SELECT SYSDATETIME()"
CLOCKS_SQL = "SELECT SYSDATETIME(), SYSUTCDATETIME()"
REFRESH_SQL = "SET NOCOUNT ON; DECLARE @start datetime = ?; EXEC queue.Refresh @start"
# The vendor's own default window ("since the previous call"), only when no start is given.
REFRESH_DEFAULT_SQL = "SET NOCOUNT ON; EXEC queue.Refresh"
PROCEDURE = "queue.Refresh"

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
        `query_timeout`: seconds per statement, `queue.Refresh` included (default: the
        profile's `query_timeout`; 0 = none). `connect`: returns an open DB-API connection
        (default: dbt-sqlserver's way, to `database`); tests pass a recording double here."""
        self.target = target
        self.database = database or target.config.get("database")
        self.query_timeout = query_timeout
        self._connect = connect or (lambda: mssql.connect(target, database=self.database))

    # --- SourceClient -------------------------------------------------------------------------

    def source_clock(self) -> datetime:
        return self.clock().now

    def clock(self) -> SourceClock:
        with self._connection(_Step("read the source clock")) as con:
            cur = con.cursor()
            cur.execute(CLOCKS_SQL)
            now, utc = (self._datetime(v) for v in cur.fetchone())
        return SourceClock(now, utc)

    def refresh(self, start: datetime | None) -> RefreshResult:
        if start is not None and start.tzinfo is not None:
            raise SourceError("queue.Refresh start must be a naive source-clock time")
        bound = to_sql_datetime(start) if start is not None else None
        step = _Step(f"run {PROCEDURE}")
        with self._connection(step) as con:
            # One transaction from the refresh to the last fingerprint (R3); autocommit is set
            # before the first statement (pyodbc refuses to switch with results pending).
            con.autocommit = False
            try:
                cur = con.cursor()
                started = self._clock(cur)
                if bound is None:
                    cur.execute(REFRESH_DEFAULT_SQL)
                else:
                    cur.execute(REFRESH_SQL, [bound])
                # Every result the procedure sends (row counts, result sets, the error after).
                while cur.nextset():
                    pass
                fingerprint = {}
                for table in QUEUE_TABLES:
                    step.action = f"fingerprint queue.{table}"
                    cur.execute(fingerprint_query(table))
                    fingerprint[table] = from_row(cur.fetchone())
                step.action = "read the source clock"
                cur.execute(CLOCKS_SQL)
                finished, utc = (self._datetime(v) for v in cur.fetchone())
                step.action = f"commit {PROCEDURE}"
                con.commit()
            except BaseException:
                with suppress(Exception):
                    con.rollback()
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
        with self._connection(_Step("read the source")) as con:
            cur = con.cursor()
            cur.arraysize = ARRAYSIZE
            if params:
                cur.execute(sql, list(params))
            else:
                cur.execute(sql)
            try:
                yield cur
            finally:
                cur.close()

    def close(self) -> None:
        """Nothing to close: every call opens and closes its own connection."""

    def __enter__(self) -> SqlServerSourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ------------------------------------------------------------------------------

    def _clock(self, cur: Any) -> datetime:
        cur.execute(CLOCK_SQL)
        return self._datetime(cur.fetchone()[0])

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
    def _connection(self, step: _Step) -> Iterator[Any]:
        """An open connection (query timeout applied) for one step; driver errors mapped."""
        con = None
        try:
            con = self._connect()
            if self.query_timeout is not None:
                con.timeout = self.query_timeout
            yield con
        except SourceError:
            raise
        except ProfileError as exc:
            raise SourceError(self.target.scrub(str(exc))) from None
        except Exception as exc:
            if not mssql.is_driver_error(exc):
                raise
            raise self._error(exc, step.action) from None
        finally:
            if con is not None:
                with suppress(Exception):  # the connection may be what failed
                    con.close()

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
        message = self.target.scrub(message)
        if mssql.classify(exc) == "transient":
            return TransientSourceError(message)
        return SourceError(message)

    def _where(self) -> str:
        return mssql.endpoint(self.target, self.database)


@dataclass
class _Step:
    """What the client is doing, for the error message if it fails."""

    action: str
