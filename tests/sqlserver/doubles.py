"""A recording DB-API double of a SQL Server driver: a test double, not a driver.

`RecordingDriver` opens `RecordingConnection`s that share one `Log`: every SQL text, parameter
(value and Python type), the autocommit state and `timeout` at each execute, every executemany
(its rows, `fast_executemany`, `setinputsizes`), every `nextset()`, commits and rollbacks. Each
statement's outcome comes from a `respond(sql, params)` function: result sets, row counts, or
real pyodbc exceptions (`odbc_error`) raised where a driver raises them. `default_responder`
answers like a healthy sync database.

The double is as strict as pyodbc and the ODBC drivers, and refuses what they refuse:
- a parameter count that differs from the statement's `?` markers (counted outside string
  literals, comments, bracketed and double-quoted names; `parameter_markers`): pyodbc's own
  ProgrammingError, or the driver's error when markers come without any parameter;
- a new statement on a connection whose previous results are unread: SQL Server without MARS
  serves one result stream per connection, so while a cursor has a result set not fetched to
  its end (a `fetchone()` of a single-row SELECT has not reached the end) or results not yet
  taken with `nextset()`, another cursor's statement fails ("Connection is busy with results for
  another command", Microsoft's driver; FreeTDS: "Invalid cursor state"), and so does switching
  autocommit. Re-executing the same cursor, closing it, or dropping the last reference to it
  (pyodbc frees the statement) ends its results, as with pyodbc;
- `fast_executemany` where the driver cannot do it: FreeTDS older than 1.5.15 crashes the process
  inside SQLExecute (SIGSEGV, mkleehammer/pyodbc#459); the double raises `DriverCrash`, which
  no `except Exception` swallows.
The driver is chosen per driver (`driver=` the ODBC driver name, as in a profile's `driver`) and
answers `getinfo(SQL_DRIVER_NAME)` with that driver's library name.

What a double cannot prove: how a real server and driver answer (the live tests in
tests/sqlserver/ do, where a server is configured).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyodbc

from exigo_sync.catalog import QUEUE_TABLES, REPLICATED_TABLES
from exigo_sync.source import sqlserver_client as client_mod

# One result of a statement: rows (a result set), an int (a row count, no result set), or an
# exception (raised when the cursor reaches it: at execute() if first, else at nextset()).
Outcome = list[Any]

MSODBC18 = "ODBC Driver 18 for SQL Server"
FREETDS = "FreeTDS"
# What `SQLGetInfo(SQL_DRIVER_NAME)` answers for each driver (the library's file name).
DRIVER_LIBRARIES = {MSODBC18: "libmsodbcsql-18.5.so.1.1", FREETDS: "libtdsodbc.so"}
SQL_DRIVER_NAME = 6  # pyodbc.SQL_DRIVER_NAME


class DriverCrash(BaseException):
    """Where the real driver kills the process (a BaseException: no `except Exception` in the
    code under test can swallow it, as none could catch a SIGSEGV)."""


# --- what the driver counts -------------------------------------------------------------------

_TOKENS = re.compile(
    r"""(?P<literal>N?'(?:[^']|'')*'?)
      | (?P<line>--[^\n]*)
      | (?P<block>/\*)
      | (?P<bracket>\[(?:[^\]]|\]\])*\]?)
      | (?P<quoted>"(?:[^"]|"")*"?)
      | (?P<marker>\?)""",
    re.VERBOSE,
)


def parameter_markers(sql: str) -> int:
    """The `?` parameter markers of a statement as the driver counts them: not inside a string
    literal ('...', N'...', '' inside), a comment (-- to the end of the line; /* */, which T-SQL
    nests), a bracketed name ([...], ]] inside) or a double-quoted identifier."""
    count, pos = 0, 0
    while (m := _TOKENS.search(sql, pos)) is not None:
        pos = m.end()
        if m.lastgroup == "marker":
            count += 1
        elif m.lastgroup == "block":
            depth = 1
            while depth and pos < len(sql):
                if sql.startswith("/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif sql.startswith("*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
    return count


def _driver_error(driver: str, cls: type[pyodbc.Error], sqlstate: str, text: str,
                  fn: str) -> pyodbc.Error:  # fmt: skip
    """An error as pyodbc raises it from the driver's diagnostic record."""
    if driver == FREETDS:
        return cls(sqlstate, f"[{sqlstate}] [FreeTDS][SQL Server]{text} (0) ({fn})")
    return cls(sqlstate, f"[{sqlstate}] [Microsoft][{MSODBC18}]{text} (0) ({fn})")


def _busy(driver: str, fn: str) -> pyodbc.Error:
    if driver == FREETDS:  # what FreeTDS 1.3 answers (seen live)
        return _driver_error(driver, pyodbc.ProgrammingError, "24000", "Invalid cursor state", fn)
    return _driver_error(
        driver, pyodbc.Error, "HY000", "Connection is busy with results for another command", fn
    )


def _check_parameters(driver: str, sql: str, params: Sequence[Any], fn: str) -> None:
    markers, supplied = parameter_markers(sql), len(params)
    if markers == supplied:
        return
    if supplied == 0:  # no parameters: pyodbc sends the text as it is; the driver refuses it
        if driver == FREETDS:  # pyodbc's words when FreeTDS leaves no diagnostic (seen live)
            raise pyodbc.Error("HY000", "The driver did not supply an error!")
        raise _driver_error(
            driver, pyodbc.Error, "07002", "COUNT field incorrect or syntax error", fn
        )
    raise pyodbc.ProgrammingError(
        f"The SQL contains {markers} parameter markers, but {supplied} parameters were supplied",
        "HY000",
    )


def _parameters(params: tuple[Any, ...]) -> tuple[Any, ...]:
    """pyodbc's reading of execute(sql, *params): one list or tuple is the parameter list."""
    if len(params) == 1 and isinstance(params[0], list | tuple):
        return tuple(params[0])
    return params


# --- the double ---------------------------------------------------------------------------------


@dataclass
class Call:
    """One execute() or executemany() as the double saw it."""

    sql: str
    params: tuple[Any, ...]  # executemany: the first row's
    param_types: tuple[type, ...]
    autocommit: bool
    timeout: int
    connection: int
    rows: list[tuple] | None = None  # executemany: every row
    fast_executemany: bool = False
    input_sizes: list[Any] | None = None


@dataclass
class Log:
    """Shared by every connection a RecordingDriver opens."""

    calls: list[Call] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # commit, rollback, close, autocommit=...
    nextset_calls: int = 0

    def sql(self) -> list[str]:
        return [c.sql for c in self.calls]


class RecordingCursor:
    def __init__(self, con: RecordingConnection) -> None:
        self.con = con
        self.arraysize = 1
        self.description: Any = None
        self.rowcount = -1
        self.closed = False
        self.fast_executemany = False
        self.input_sizes: list[Any] | None = None
        self._rows: list[tuple] = []
        self._at_end = True  # the current result set was fetched past its last row
        self._pending: list[Any] = []

    # --- statements ---------------------------------------------------------------------------

    def execute(self, sql: str, *params: Any) -> RecordingCursor:
        values = _parameters(params)
        self._start("SQLExecute" if values else "SQLExecDirectW")
        _check_parameters(self.con.driver, sql, values, "SQLExecDirectW")
        self.con.log.calls.append(self._call(sql, values))
        self._pending = list(self.con.respond(sql, values))
        self._advance()
        return self

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in seq_of_params]
        if not rows:
            raise pyodbc.ProgrammingError("The second parameter to executemany must not be empty.")
        self._start("SQLExecute")
        for row in rows:
            _check_parameters(self.con.driver, sql, row, "SQLExecute")
        if self.fast_executemany and self.con.driver == FREETDS:
            raise DriverCrash(
                "fast_executemany under FreeTDS: the real driver kills the process here "
                "(SIGSEGV in SQLExecute, mkleehammer/pyodbc#459; FreeTDS < 1.5.15)"
            )
        call = self._call(sql, rows[0])
        call.rows, call.fast_executemany = rows, self.fast_executemany
        self.con.log.calls.append(call)
        for row in rows:
            for item in self.con.respond(sql, row):
                if isinstance(item, BaseException):
                    raise item
        self.rowcount = -1

    def setinputsizes(self, sizes: Sequence[Any] | None) -> None:
        self.input_sizes = None if sizes is None else list(sizes)

    def _start(self, fn: str) -> None:
        if self.closed or self.con.closed:
            raise pyodbc.ProgrammingError("Attempt to use a closed cursor.")
        self.con.check_free(self, fn)
        # pyodbc closes this cursor's previous statement first: its results are gone.
        self._pending, self._rows, self._at_end, self.description = [], [], True, None

    def _call(self, sql: str, values: Sequence[Any]) -> Call:
        return Call(
            sql, tuple(values), tuple(type(v) for v in values), self.con.autocommit,
            self.con.timeout, self.con.number, input_sizes=self.input_sizes,
        )  # fmt: skip

    def _advance(self) -> bool:
        if not self._pending:
            self.description, self._rows, self._at_end = None, [], True
            return False
        item = self._pending.pop(0)
        if isinstance(item, BaseException):
            self.description, self._rows, self._at_end, self._pending = None, [], True, []
            raise item
        if isinstance(item, int):
            self.description, self._rows, self.rowcount, self._at_end = None, [], item, True
        else:
            self.description = [("c0", None, None, None, None, None, None)]
            self._rows, self.rowcount, self._at_end = list(item), -1, False
        return True

    # --- results ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Results of this cursor the server still holds the connection for (no MARS)."""
        return not self.closed and (bool(self._pending) or not self._at_end)

    def nextset(self) -> bool:
        self.con.log.nextset_calls += 1
        return self._advance()

    def fetchone(self) -> tuple | None:
        self._need_results()
        if not self._rows:
            self._at_end = True
            return None
        return self._rows.pop(0)

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        self._need_results()
        n = size or self.arraysize
        out, self._rows = self._rows[:n], self._rows[n:]
        if len(out) < n:
            self._at_end = True
        return out

    def fetchall(self) -> list[tuple]:
        self._need_results()
        out, self._rows, self._at_end = self._rows, [], True
        return out

    def _need_results(self) -> None:
        if self.description is None:
            raise pyodbc.ProgrammingError("No results.  Previous SQL was not a query.")

    def close(self) -> None:
        self.closed = True
        self._pending, self._rows, self._at_end = [], [], True

    def __iter__(self) -> Any:
        return iter(self.fetchone, None)


class RecordingConnection:
    """A DB-API connection double: `respond(sql, params)` gives the outcome of each statement."""

    def __init__(
        self, log: Log, respond: Callable[[str, tuple], Outcome], number: int,
        driver: str = MSODBC18,
    ) -> None:  # fmt: skip
        self.log = log
        self.respond = respond
        self.number = number
        self.driver = driver
        self._autocommit = True
        self.timeout = 0
        self.closed = False
        self._cursors: weakref.WeakSet[RecordingCursor] = weakref.WeakSet()

    @property
    def autocommit(self) -> bool:
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        if any(c.busy for c in self._cursors):
            if self.driver == FREETDS:  # seen live
                raise _driver_error(
                    self.driver, pyodbc.Error, "HY000", "Could not change transaction status",
                    "SQLSetConnectAttr",
                )  # fmt: skip
            raise _busy(self.driver, "SQLSetConnectAttr")
        self.log.events.append(f"autocommit={value}")
        self._autocommit = value

    def check_free(self, cursor: RecordingCursor, fn: str) -> None:
        """No MARS: another cursor's unread results make the connection busy."""
        if any(c.busy for c in self._cursors if c is not cursor):
            raise _busy(self.driver, fn)

    def getinfo(self, info_type: int) -> Any:
        if info_type == SQL_DRIVER_NAME:
            return DRIVER_LIBRARIES[self.driver]
        raise NotImplementedError(f"getinfo({info_type}) is not part of the double")

    def cursor(self) -> RecordingCursor:
        if self.closed:
            raise pyodbc.ProgrammingError("Attempt to use a closed connection.")
        cur = RecordingCursor(self)
        self._cursors.add(cur)
        return cur

    def execute(self, sql: str, *params: Any) -> RecordingCursor:
        """pyodbc's shortcut: a new cursor, executed."""
        return self.cursor().execute(sql, *params)

    def commit(self) -> None:
        self.log.events.append("commit")

    def rollback(self) -> None:
        self.log.events.append("rollback")

    def close(self) -> None:
        self.closed = True
        self.log.events.append("close")


class RecordingDriver:
    """Opens RecordingConnections sharing one log. `open` is the zero-argument seam of the
    clients; as a module (`connect(con_str, **kwargs)`, `pooling`, `drivers()`) it stands in for
    pyodbc in `sqlserver.connect(module=...)`, the driver then read from the string's DRIVER=.
    `driver`: the ODBC driver the connections behave like (MSODBC18 or FREETDS)."""

    def __init__(
        self, respond: Callable[[str, tuple], Outcome] | None = None, driver: str = MSODBC18
    ) -> None:
        self.log = Log()
        self.respond = respond or default_responder()
        self.driver = driver
        self.connections: list[RecordingConnection] = []
        self.connect_calls: list[tuple[tuple, dict]] = []
        self.connect_errors: list[BaseException] = []
        self.pooling = False

    def open(self, driver: str | None = None) -> RecordingConnection:
        con = RecordingConnection(
            self.log, self.respond, len(self.connections), driver or self.driver
        )
        self.connections.append(con)
        return con

    def connect(self, *args: Any, **kwargs: Any) -> RecordingConnection:
        self.connect_calls.append((args, kwargs))
        if self.connect_errors:
            raise self.connect_errors.pop(0)
        named = re.search(r"DRIVER=\{([^}]*)\}", str(args[0]) if args else "", re.IGNORECASE)
        con = self.open(named[1] if named and named[1] in DRIVER_LIBRARIES else None)
        con.autocommit = kwargs.get("autocommit", False)
        return con

    @staticmethod
    def drivers() -> list[str]:
        return [FREETDS]


# --- a healthy sync database ----------------------------------------------------------------------

CLOCK = [datetime(2026, 1, 5, 10, 0, 0, 123456), datetime(2026, 1, 5, 10, 0, 42, 654321)]
UTC_OFFSET = timedelta(hours=1)  # the server's local clock minus its UTC clock


def fingerprint_row(table: str, rows: int) -> tuple:
    """What the fingerprint query of `table` (exigo_sync.snapshot) answers for a queue table
    of `rows` rows with keys 1..rows, changed over the `rows` minutes before CLOCK[0]."""
    t = REPLICATED_TABLES[table]
    sums = [rows * (rows + 1) // 2 if rows else None for _ in t.key]
    if not t.version_time_column or not rows:
        return (rows, *sums, None, None)
    return (rows, *sums, CLOCK[0] - timedelta(minutes=rows), CLOCK[0])


def default_responder(
    clock: Iterable[datetime] | None = None,
    counts: dict[str, int] | None = None,
    refresh: Outcome | None = None,
    rows: list[tuple] | None = None,
) -> Callable[[str, tuple], Outcome]:
    """Answers like a healthy sync database: the clock (successive values; with UTC, UTC_OFFSET
    behind), `refresh` for the EXEC batch (default: no result), each queue table's fingerprint
    (`counts` rows per table; default 1, 2, ... in QUEUE_TABLES order), `rows` for any other
    SELECT; any other statement (SET ...) has no result."""
    ticks = iter(clock or CLOCK * 10)
    counts = counts if counts is not None else {t: i + 1 for i, t in enumerate(QUEUE_TABLES)}
    fingerprints = {client_mod.fingerprint_query(t): t for t in QUEUE_TABLES}

    def respond(sql: str, params: tuple) -> Outcome:
        if sql == client_mod.CLOCK_SQL:
            return [[(next(ticks),)]]
        if sql == client_mod.CLOCKS_SQL:
            now = next(ticks)
            return [[(now, now - UTC_OFFSET)]]
        if "queue.Refresh" in sql:
            return list(refresh or [])
        if sql in fingerprints:
            table = fingerprints[sql]
            return [[fingerprint_row(table, counts.get(table, 0))]]
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            return [list(rows or [])]
        return []

    return respond


def odbc_error(
    cls: type[pyodbc.Error], sqlstate: str, number: int, text: str, fn: str = "SQLExecDirectW"
) -> pyodbc.Error:
    """A pyodbc exception shaped as pyodbc builds it from an ODBC Driver 18 diagnostic."""
    message = (
        f"[{sqlstate}] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]{text} "
        f"({number}) ({fn})"
    )
    return cls(sqlstate, message)
