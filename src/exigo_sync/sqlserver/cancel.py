"""Statements a stop can reach (R4): the one place a SQL Server statement is run so that SIGTERM,
Ctrl-C or the flow timeout ends it instead of waiting for it.

Why a thread: Python runs a signal handler (Prefect's SIGTERM -> `TerminationSignal`, Ctrl-C ->
`KeyboardInterrupt`, the flow timeout's SIGALRM) only in the main thread and only between
bytecodes, and Prefect's other timeout (an exception injected into the flow's thread) also waits
for the next bytecode. A thread blocked inside the driver's execute (pyodbc releases the GIL in
SQLExecDirect, but does not return until the server answers) runs no bytecode: a `queue.Refresh`
waiting behind another consumer's lock would ignore every stop until that lock went away, with
the lock heartbeat keeping the source wedged.

So `StatementRunner.run` makes the blocking call in a worker thread while the calling thread
waits in short slices (`POLL_SECONDS`), where any stop reaches it. When the wait is interrupted
by an exception, the caller's thread calls `cursor.cancel()` (ODBC SQLCancel, made to be called
from another thread: SQL Server gets a TDS attention, cancels the statement and rolls back its
transaction under XACT_ABORT; the blocked execute then raises HY008 "Operation canceled"), waits
up to `CANCEL_WAIT_SECONDS` for the worker to come back, and re-raises the caller's exception.

A driver that does not come back in time (mssql-python 1.16 has no cancel at all,
microsoft/mssql-python#424, so its query timeout is the only bound; a server that does not answer
the attention) is abandoned: the caller goes on stopping the run, and nothing touches the
connection while the driver is still inside it (closing or rolling back under a running execute
deadlocks FreeTDS): the worker closes it when the driver returns, or the process's exit does.

One statement at a time per connection, as the drivers require (no MARS: no statement while
results are pending, pyodbc#424); `run` refuses a connection that has an abandoned statement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

# How often the waiting thread wakes, so a signal handler or an injected exception runs.
POLL_SECONDS = 0.05
# How long a stopped caller waits for the driver after cancel(): SQL Server answers an attention
# at once; this bounds the wait when nothing answers.
CANCEL_WAIT_SECONDS = 2.0
WORKER_NAME = "exigo-sync-statement"


class StatementAbandoned(RuntimeError):
    """A statement on this connection was stopped but its driver call never came back."""


class _Call(Generic[T]):
    """One blocking driver call in a worker thread."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.after: Callable[[], None] | None = None  # run by the worker once it is back
        self.skip = False  # stopped before the worker began: it never sends the statement
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._work, name=WORKER_NAME, daemon=True)

    def _work(self) -> None:
        try:
            if not self.skip:
                self.result = self._call()
        except BaseException as exc:
            self.error = exc
        finally:
            with self._lock:
                self.done.set()
                after = self.after
            if after is not None:
                with suppress(Exception):
                    after()

    def leave(self, after: Callable[[], None]) -> bool:
        """Hand the cleanup to the worker; False if it is back already (the caller cleans)."""
        with self._lock:
            if self.done.is_set():
                return False
            self.after = after
            return True


class StatementRunner:
    """Runs one DB-API connection's statements so that a stop in the calling thread cancels
    them (see the module docstring). `close()` instead of `connection.close()`."""

    def __init__(
        self,
        connection: Any,
        *,
        cancel_wait: float = CANCEL_WAIT_SECONDS,
        logger: logging.Logger | None = None,
    ) -> None:
        self.connection = connection
        self.cancel_wait = cancel_wait
        self.abandoned = False
        self._closed = False
        self._log = logger or log

    def run(self, cursor: Any, call: Callable[[], T]) -> T:
        """`call()` (an execute, a fetch, a drain of results on `cursor`) in a worker thread;
        its result or its error. Whatever interrupts the wait cancels the statement on
        `cursor` and goes on as itself."""
        if self.abandoned:
            raise StatementAbandoned(
                "a stopped statement is still running on this connection: it takes no other"
            )
        job = _Call(call)
        try:
            # A stop can land while start() waits for the thread to begin, too.
            job.thread.start()
            while not job.done.wait(POLL_SECONDS):
                pass
        except BaseException:
            job.skip = True
            self._stop(cursor, job)
            raise
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def rollback(self) -> None:
        """Roll back, unless a stopped statement still holds the connection (the server rolls
        its transaction back when it cancels the statement or the connection goes)."""
        if not self.abandoned:
            with suppress(Exception):
                self.connection.rollback()

    def close(self) -> None:
        """Close the connection now, or when an abandoned statement's driver call returns."""
        if self._closed:
            return
        self._closed = True
        if not self.abandoned:
            with suppress(Exception):
                self.connection.close()

    def _stop(self, cursor: Any, job: _Call[Any]) -> None:
        if job.thread.ident is None:
            return  # stopped before the thread started: nothing was sent
        started = time.monotonic()
        cancel = getattr(cursor, "cancel", None)
        if callable(cancel):
            try:
                cancel()
            except Exception as exc:  # nothing in flight any more, a closed connection
                self._log.debug("cancel() failed: %s", exc)
        connection = self.connection

        def close_when_back() -> None:
            with suppress(Exception):
                connection.close()

        came_back = False
        try:
            came_back = job.done.wait(self.cancel_wait)
        finally:  # a second stop during the wait abandons the statement at once
            if came_back or not job.leave(close_when_back):
                self._log.warning(
                    "stopping: cancelled the SQL Server statement in flight (it ended %.1f s "
                    "after its cancel)",
                    time.monotonic() - started,
                )
            else:
                self.abandoned = True
                self._log.warning(
                    "stopping: the SQL Server statement in flight did not end within %.0f s of "
                    "its cancel%s; its connection is closed when the driver returns",
                    self.cancel_wait,
                    ""
                    if callable(cancel)
                    else " (this driver cannot cancel one: only its query timeout ends it)",
                )
