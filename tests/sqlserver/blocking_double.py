"""A DB-API double of a SQL Server connection whose chosen statement blocks, as one waiting
behind another session's lock does: a test double, not a driver.

The statement (or, with `block_in="fetch"`, the first fetch of its result) waits on an Event
until `cursor.cancel()` is called, then raises the error pyodbc raises for a cancelled statement
(SQLSTATE HY008, "Operation canceled"). The wait is a plain `Event.wait()` in C, like pyodbc's
SQLExecDirect with the GIL released: an exception injected into the waiting thread (Prefect's
timeout off the main thread, `_thread` interrupts) is not delivered until it returns. A safety
timeout (`SAFETY_SECONDS`) ends the wait so that a test of code that never cancels fails instead
of hanging. `cancellable=False` stands in for a driver without a cancel (mssql-python 1.16,
microsoft/mssql-python#424): such a statement ends only when `release()` is called.

Everything is recorded in `events` (execute / cancel / rollback / commit / close, with the
thread that did it), so a test can say who touched the connection and when. What a double
cannot prove: how a real server answers a cancel (the live tests in tests/sqlserver/ do)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pyodbc

SAFETY_SECONDS = 15.0
NOW = datetime(2026, 1, 5, 10, 0, 0, 123000)


def cancelled_error() -> pyodbc.Error:
    """What pyodbc raises from an execute cancelled by SQLCancel (ODBC Driver 18's text)."""
    return pyodbc.OperationalError(
        "HY008", "[HY008] [Microsoft][ODBC Driver 18 for SQL Server]Operation canceled (0) "
        "(SQLExecDirectW)",
    )  # fmt: skip


def default_rows(sql: str) -> list[tuple]:
    """Rows for the source client's clock and fingerprint queries; none for anything else."""
    if sql.startswith("SELECT SYSDATETIME(), SYSUTCDATETIME()"):
        return [(NOW, NOW)]
    if sql.startswith("SELECT SYSDATETIME()"):
        return [(NOW,)]
    if sql.startswith("SELECT COUNT(*)"):
        # count, key sums (at most three keys), earliest, latest: the client only shapes it
        width = sql.count("SUM(") + 3
        return [(0,) + (None,) * (width - 1)]
    return []


class BlockingConnection:
    """A connection whose statements matching `blocks(sql)` block (see the module docstring)."""

    def __init__(
        self,
        blocks: Callable[[str], bool],
        *,
        block_in: str = "execute",
        cancellable: bool = True,
        rows: Callable[[str], list[tuple]] = default_rows,
    ) -> None:
        self.blocks = blocks
        self.block_in = block_in
        self.cancellable = cancellable
        self.rows = rows
        self.events: list[tuple[str, str]] = []
        self.blocked = threading.Event()  # set while a statement waits
        self.returned = threading.Event()  # set when the blocked call has come back
        self._release = threading.Event()
        self.autocommit = True
        self.timeout = 0
        self.closed = False

    def record(self, event: str) -> None:
        self.events.append((event, threading.current_thread().name))

    def names(self) -> list[str]:
        return [e for e, _ in self.events]

    def cursor(self) -> Any:
        return BlockingCursor(self) if self.cancellable else UncancellableCursor(self)

    def release(self) -> None:
        """End the blocked statement as if the other session's lock went away."""
        self._release.set()

    def wait_blocked(self, cursor: BlockingCursor) -> None:
        self.blocked.set()
        try:
            if not self._release.wait(SAFETY_SECONDS):
                self.record("safety timeout")
            if cursor.cancelled:
                raise cancelled_error()
        finally:
            self.returned.set()

    def commit(self) -> None:
        self.record("commit")

    def rollback(self) -> None:
        self.record("rollback")

    def close(self) -> None:
        self.closed = True
        self.record("close")


class BlockingCursor:
    def __init__(self, con: BlockingConnection) -> None:
        self.con = con
        self.cancelled = False
        self.description: Any = None
        self.rowcount = -1
        self.arraysize = 1
        self._rows: list[tuple] = []
        self._block_fetch = False

    def execute(self, sql: str, *params: Any) -> BlockingCursor:
        self.con.record(f"execute {sql}")
        self._rows = list(self.con.rows(sql))
        self.description = [("c0", None, None, None, None, None, None)] if self._rows else None
        if self.con.blocks(sql):
            if self.con.block_in == "fetch":
                self._block_fetch = True
                self.description = [("c0", None, None, None, None, None, None)]
            else:
                self.con.wait_blocked(self)
        return self

    def executemany(self, sql: str, rows: Any) -> None:
        self.execute(sql)

    def cancel(self) -> None:
        self.con.record("cancel")
        self.cancelled = True
        self.con._release.set()

    def _fetch(self) -> None:
        if self._block_fetch:
            self._block_fetch = False
            self.con.wait_blocked(self)

    def fetchone(self) -> tuple | None:
        self._fetch()
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        self._fetch()
        n = size or self.arraysize
        out, self._rows = self._rows[:n], self._rows[n:]
        return out

    def fetchall(self) -> list[tuple]:
        self._fetch()
        out, self._rows = self._rows, []
        return out

    def nextset(self) -> bool:
        return False

    def close(self) -> None:
        self.con.record("cursor close")


class UncancellableCursor(BlockingCursor):
    """A cursor without `cancel` (mssql-python 1.16)."""

    def __getattribute__(self, name: str) -> Any:
        if name == "cancel":
            raise AttributeError(name)
        return super().__getattribute__(name)
