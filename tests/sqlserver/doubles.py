"""A recording DB-API double of a SQL Server driver: a test double, not a driver.

`RecordingDriver` opens `RecordingConnection`s that share one `Log`: every SQL text, parameter
(value and Python type), the autocommit state and `timeout` at each execute, every `nextset()`,
commits and rollbacks. Each statement's outcome comes from a `respond(sql, params)` function:
result sets, row counts, or real pyodbc exceptions (`odbc_error`) raised where a driver raises
them. `default_responder` answers like a healthy sync database. What a double cannot prove: how
a real server and driver answer (the live tests in tests/sqlserver/ do, where a server is
configured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyodbc

from exigo_sync.catalog import QUEUE_TABLES
from exigo_sync.source import sqlserver_client as client_mod

# One result of a statement: rows (a result set), an int (a row count, no result set), or an
# exception (raised when the cursor reaches it: at execute() if first, else at nextset()).
Outcome = list[Any]


@dataclass
class Call:
    """One execute() as the double saw it."""

    sql: str
    params: tuple[Any, ...]
    param_types: tuple[type, ...]
    autocommit: bool
    timeout: int
    connection: int


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
        self._rows: list[tuple] = []
        self._pending: list[Any] = []

    def execute(self, sql: str, *params: Any) -> RecordingCursor:
        values = tuple(params[0]) if len(params) == 1 and isinstance(params[0], list) else params
        self.con.log.calls.append(
            Call(
                sql,
                values,
                tuple(type(v) for v in values),
                self.con.autocommit,
                self.con.timeout,
                self.con.number,
            )
        )
        self._pending = list(self.con.respond(sql, values))
        self._advance()
        return self

    def _advance(self) -> bool:
        if not self._pending:
            self.description, self._rows = None, []
            return False
        item = self._pending.pop(0)
        if isinstance(item, BaseException):
            self.description, self._rows = None, []
            raise item
        if isinstance(item, int):
            self.description, self._rows, self.rowcount = None, [], item
        else:
            self.description, self._rows = [("c0", None, None, None, None, None, None)], list(item)
            self.rowcount = -1
        return True

    def nextset(self) -> bool:
        self.con.log.nextset_calls += 1
        return self._advance()

    def fetchone(self) -> tuple | None:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        n = size or self.arraysize
        out, self._rows = self._rows[:n], self._rows[n:]
        return out

    def fetchall(self) -> list[tuple]:
        out, self._rows = self._rows, []
        return out

    def close(self) -> None:
        self.closed = True


class RecordingConnection:
    """A DB-API connection double: `respond(sql, params)` gives the outcome of each statement."""

    def __init__(self, log: Log, respond: Callable[[str, tuple], Outcome], number: int) -> None:
        self.log = log
        self.respond = respond
        self.number = number
        self._autocommit = True
        self.timeout = 0
        self.closed = False

    @property
    def autocommit(self) -> bool:
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.log.events.append(f"autocommit={value}")
        self._autocommit = value

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

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
    pyodbc in `sqlserver.connect(module=...)`."""

    def __init__(self, respond: Callable[[str, tuple], Outcome] | None = None) -> None:
        self.log = Log()
        self.respond = respond or default_responder()
        self.connections: list[RecordingConnection] = []
        self.connect_calls: list[tuple[tuple, dict]] = []
        self.connect_errors: list[BaseException] = []
        self.pooling = False

    def open(self) -> RecordingConnection:
        con = RecordingConnection(self.log, self.respond, len(self.connections))
        self.connections.append(con)
        return con

    def connect(self, *args: Any, **kwargs: Any) -> RecordingConnection:
        self.connect_calls.append((args, kwargs))
        if self.connect_errors:
            raise self.connect_errors.pop(0)
        con = self.open()
        con.autocommit = kwargs.get("autocommit", False)
        return con

    @staticmethod
    def drivers() -> list[str]:
        return ["FreeTDS"]


CLOCK = [datetime(2026, 1, 5, 10, 0, 0, 123456), datetime(2026, 1, 5, 10, 0, 42, 654321)]


def default_responder(
    clock: Iterable[datetime] | None = None,
    counts: dict[str, int] | None = None,
    refresh: Outcome | None = None,
    rows: list[tuple] | None = None,
) -> Callable[[str, tuple], Outcome]:
    """Answers like a healthy sync database: the clock (successive values), `refresh` for the
    EXEC batch (default: no result), row counts per queue table, `rows` for any other SELECT."""
    ticks = iter(clock or CLOCK * 10)
    counts = counts if counts is not None else {t: i + 1 for i, t in enumerate(QUEUE_TABLES)}

    def respond(sql: str, params: tuple) -> Outcome:
        if sql == client_mod.CLOCK_SQL:
            return [[(next(ticks),)]]
        if "queue.Refresh" in sql:
            return list(refresh or [])
        for table, n in counts.items():
            if sql == client_mod.count_sql(table):
                return [[(n,)]]
        if sql.startswith("SET "):
            return []
        return [list(rows or [])]

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
