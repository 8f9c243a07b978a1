"""R4 without a server: a stop reaches a SQL Server statement that waits at the source or the
warehouse, and the statement is cancelled, not waited for (exigo_sync.sqlserver.cancel).

The statements block in `BlockingConnection` (tests/sqlserver/blocking_double.py), a double
whose execute waits in C like pyodbc's, so an exception injected into the waiting thread is not
delivered until the call returns. The stops are the real mechanisms where they can run in a
test process: Prefect's flow timeout off the main thread (`prefect.utilities.timeout`, an
exception injected into the flow's thread) and a KeyboardInterrupt injected the same way (a
signal handler raises it between two bytecodes of the main thread just so). What a double
cannot prove: that a server cancels the statement (tests/sqlserver/test_live_cancel.py does,
where a server is configured)."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyodbc
import pytest
from prefect.utilities.timeout import timeout

from exigo_sync.source.sqlserver_client import REFRESH_SQL, SqlServerSourceClient
from exigo_sync.sqlserver.cancel import WORKER_NAME, StatementAbandoned, StatementRunner
from exigo_sync.warehouse.sqlserver_engine import open_sqlserver
from tests.sqlserver.blocking_double import SAFETY_SECONDS, BlockingConnection
from tests.sqlserver.targets import sqlserver_target

STOP_AFTER = 0.5
# A stopped call must be back well before the double's safety timeout ends the wait.
BOUND = 5.0


@dataclass
class Stopped:
    error: BaseException | None
    seconds: float  # from the stop to the call's end


def _inject(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Raise `exc_type` in `thread` at its next bytecode, as Prefect's timeout watcher does."""
    assert thread.ident is not None
    ret = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
    )
    assert ret == 1


def stop_while_blocked(
    call: Callable[[], Any], con: BlockingConnection, how: str = "timeout"
) -> Stopped:
    """Run `call` in a thread of its own (the flow's thread); stop it once its statement
    blocks: `timeout` = Prefect's timeout around the call, `ctrl-c` = a KeyboardInterrupt."""
    outcome: dict[str, Any] = {"error": None}
    stopped_at: list[float] = []

    def caller() -> None:
        try:
            if how == "timeout":
                with timeout(STOP_AFTER):
                    call()
            else:
                call()
        except BaseException as exc:
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=caller, name="flow-thread")
    thread.start()
    assert con.blocked.wait(5), "the statement never blocked"
    if how == "timeout":
        stopped_at.append(time.monotonic() + max(0.0, STOP_AFTER - 0.1))
    else:
        stopped_at.append(time.monotonic())
        _inject(thread, KeyboardInterrupt)
    thread.join(SAFETY_SECONDS + 5)
    assert not thread.is_alive()
    return Stopped(outcome["error"], outcome["ended"] - stopped_at[0])


def no_statement_threads_left(within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while any(t.name == WORKER_NAME and t.is_alive() for t in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def source_client(con: BlockingConnection, **kwargs: Any) -> SqlServerSourceClient:
    return SqlServerSourceClient(sqlserver_target(), database="ExigoSync", connect=lambda: con,
                                 **kwargs)  # fmt: skip


# --- the source client -------------------------------------------------------------------------


def test_r4_flow_timeout_cancels_a_refresh_blocked_behind_a_lock() -> None:
    """EXEC queue.Refresh waits behind another consumer's lock; the flow timeout fires: the
    statement is cancelled from the flow's thread, the transaction rolled back, the connection
    closed, and the TimeoutError goes on as itself, within seconds."""
    con = BlockingConnection(lambda sql: sql == REFRESH_SQL)
    stopped = stop_while_blocked(lambda: source_client(con).refresh(datetime(2026, 1, 4)), con)
    assert isinstance(stopped.error, TimeoutError), stopped.error
    assert stopped.seconds < BOUND, stopped
    names = con.names()
    assert "cancel" in names and "safety timeout" not in names, names
    assert dict(con.events)["cancel"] == "flow-thread"
    assert names.index("cancel") < names.index("rollback") < names.index("close"), names
    assert no_statement_threads_left()


def test_r4_ctrl_c_cancels_a_fingerprint_blocked_behind_a_lock() -> None:
    """A fingerprint query of the refresh's transaction waits (a lock on a queue table); Ctrl-C
    in the flow's thread cancels it; KeyboardInterrupt goes on."""
    con = BlockingConnection(lambda sql: sql.startswith("SELECT COUNT(*)") and "Orders" in sql)
    stopped = stop_while_blocked(
        lambda: source_client(con).refresh(datetime(2026, 1, 4)), con, how="ctrl-c"
    )
    assert isinstance(stopped.error, KeyboardInterrupt), stopped.error
    assert stopped.seconds < BOUND, stopped
    assert "cancel" in con.names() and "close" in con.names(), con.names()
    assert no_statement_threads_left()


def test_r4_flow_timeout_cancels_a_source_query_blocked_in_a_fetch() -> None:
    """The landing's streamed read of a queue table blocks in fetchmany (rows locked by a
    rival's refresh): the timeout cancels it too."""
    con = BlockingConnection(lambda sql: "queue.[Customers]" in sql, block_in="fetch")

    def read() -> None:
        with source_client(con).query("SELECT * FROM queue.[Customers]") as cur:
            while cur.fetchmany(100):
                pass

    stopped = stop_while_blocked(read, con)
    assert isinstance(stopped.error, TimeoutError), stopped.error
    assert stopped.seconds < BOUND, stopped
    assert "cancel" in con.names() and con.closed, con.names()
    assert no_statement_threads_left()


# --- the SQL Server warehouse engine -----------------------------------------------------------


def test_r4_flow_timeout_cancels_a_warehouse_statement_blocked_behind_a_lock() -> None:
    """A ledger / lock / landing statement waits behind another session's lock in the
    warehouse: the stop cancels it; a transaction around it is rolled back."""
    con = BlockingConnection(lambda sql: sql.startswith("UPDATE"))
    warehouse = open_sqlserver(sqlserver_target(), connect=lambda: con)

    def update() -> None:
        try:
            with warehouse.transaction():
                warehouse.execute("UPDATE exigo_sync.run_lock SET heartbeat_at = ?", [1])
        finally:
            warehouse.close()

    stopped = stop_while_blocked(update, con)
    assert isinstance(stopped.error, TimeoutError), stopped.error
    assert stopped.seconds < BOUND, stopped
    names = con.names()
    assert names.index("cancel") < names.index("rollback") < names.index("close"), names
    assert no_statement_threads_left()


def test_r4_ctrl_c_cancels_a_warehouse_executemany() -> None:
    con = BlockingConnection(lambda sql: sql.startswith("INSERT"))
    warehouse = open_sqlserver(sqlserver_target(), connect=lambda: con)
    stopped = stop_while_blocked(
        lambda: warehouse.executemany("INSERT INTO t VALUES (?)", [[1], [2]]), con, how="ctrl-c"
    )
    assert isinstance(stopped.error, KeyboardInterrupt), stopped.error
    assert stopped.seconds < BOUND and "cancel" in con.names(), (stopped, con.names())
    assert no_statement_threads_left()


# --- the helper itself -------------------------------------------------------------------------


def test_r4_cancel_helper_returns_results_and_errors_unchanged() -> None:
    """Without a stop the runner is transparent: the call's result, or its own exception."""
    con = BlockingConnection(lambda sql: False)
    runner = StatementRunner(con)
    cur = con.cursor()
    assert runner.run(cur, lambda: cur.execute("SELECT SYSDATETIME()").fetchone()) is not None
    error = pyodbc.ProgrammingError("42S02", "[42S02] Invalid object name 'x'. (208)")

    def fail() -> None:
        raise error

    with pytest.raises(pyodbc.ProgrammingError) as raised:
        runner.run(cur, fail)
    assert raised.value is error
    runner.close()
    assert con.closed and no_statement_threads_left()


def test_r4_cancel_helper_timeout_in_the_waiting_thread_cancels_and_reraises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TimeoutError raised in the waiting thread: cancel() is called from that thread, the
    worker comes back (HY008), and the TimeoutError, not the driver's error, goes on; the log
    says the statement was cancelled."""
    con = BlockingConnection(lambda sql: True)
    runner = StatementRunner(con)
    cur = con.cursor()
    stopped = stop_while_blocked(lambda: runner.run(cur, lambda: cur.execute("EXEC x")), con)
    assert isinstance(stopped.error, TimeoutError), stopped.error
    assert stopped.seconds < 1.0, stopped
    assert con.returned.is_set() and not runner.abandoned
    assert dict(con.events)["cancel"] == "flow-thread"
    assert "cancelled the SQL Server statement in flight" in caplog.text
    runner.close()
    assert con.closed and no_statement_threads_left()


def test_r4_cancel_helper_abandons_a_driver_that_cannot_cancel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A driver without cancel (mssql-python): the caller waits `cancel_wait`, then goes on
    stopping; nobody touches the connection while the driver is inside it (closing under a
    running execute deadlocks FreeTDS); it is closed by the worker once the call returns, and
    the runner takes no further statement."""
    con = BlockingConnection(lambda sql: True, cancellable=False)
    runner = StatementRunner(con, cancel_wait=0.3)
    cur = con.cursor()
    stopped = stop_while_blocked(
        lambda: runner.run(cur, lambda: cur.execute("EXEC x")), con, how="ctrl-c"
    )
    assert isinstance(stopped.error, KeyboardInterrupt), stopped.error
    assert 0.3 <= stopped.seconds < 1.5, stopped
    assert runner.abandoned and not con.returned.is_set()
    assert "did not end within 0 s of its cancel (this driver cannot cancel" in caplog.text
    runner.rollback()
    runner.close()
    assert not con.closed and "rollback" not in con.names()
    with pytest.raises(StatementAbandoned):
        runner.run(cur, lambda: None)
    con.release()  # the statement ends at last (its query timeout, the lock going away)
    assert con.returned.wait(2)
    assert no_statement_threads_left()
    assert con.closed
