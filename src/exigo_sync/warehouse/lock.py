"""One in-flight batch per source (R2).

Two locks, because each covers what the other cannot:
- a Prefect global concurrency limit (strict, limit 1) serialises runs that share a Prefect API
  (deployments, `serve`, the CLI against a server) and shows up in the Prefect UI;
- a lock row in the warehouse (`exigo_sync.run_lock`) serialises runs that do not share an API,
  e.g. a CLI run on Prefect's ephemeral API next to a scheduled run.
The loser waits up to a timeout, then stops naming the holder; it never reaches queue.Refresh.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from exigo_sync.profiles import Target
from exigo_sync.warehouse import ledger
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.connection import WarehouseBusy, connect, engine


class LockTimeout(RuntimeError):
    """Another run holds the lock for this source."""


@dataclass(frozen=True)
class Holder:
    flow_run_id: str | None
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        run = f"flow run {self.flow_run_id}" if self.flow_run_id else "a run"
        return (
            f"{run} on {self.host} (pid {self.pid}) since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
            f", last heartbeat {self.heartbeat_at:%H:%M:%S} UTC"
        )


@dataclass
class WarehouseLock:
    target: Target
    name: str
    token: str
    abandoned_batches: int = 0

    def heartbeat(self) -> None:
        with connect(self.target) as con:
            con.execute(q.HEARTBEAT_LOCK, [ledger.utcnow(), self.name, self.token])

    def release(self) -> None:
        with connect(self.target) as con:
            con.execute(q.RELEASE_LOCK, [self.name, self.token])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_dead(holder: Holder, stale_after: timedelta) -> bool:
    if holder.host == socket.gethostname() and not _pid_alive(holder.pid):
        return True
    return ledger.utcnow() - holder.heartbeat_at > stale_after


def read_holder(target: Target, name: str) -> Holder | None:
    with connect(target) as con:
        ledger.ensure_schema(con, engine(target))
        row = con.execute(q.GET_LOCK, [name]).fetchone()
    return Holder(*row[1:]) if row else None


def _try_acquire(
    target: Target, name: str, token: str, flow_run_id: str | None, stale_after: timedelta
) -> tuple[bool, Holder | None]:
    """One attempt: (acquired, the holder if someone else holds it)."""
    me = [flow_run_id, socket.gethostname(), os.getpid()]
    with connect(target) as con:
        ledger.ensure_schema(con, engine(target))
        row = con.execute(q.GET_LOCK, [name]).fetchone()
        now = ledger.utcnow()
        if row is None:
            # Losing the race for the primary key means someone else holds it: re-read below.
            with suppress(Exception):
                con.execute(q.INSERT_LOCK, [name, token, *me, now, now])
        elif _is_dead(Holder(*row[1:]), stale_after):
            con.execute(q.TAKE_OVER_LOCK, [token, *me, now, now, name, row[0]])
        row = con.execute(q.GET_LOCK, [name]).fetchone()
    if row is not None and row[0] == token:
        return True, None
    return False, Holder(*row[1:]) if row else None


@contextmanager
def warehouse_lock(
    target: Target,
    name: str,
    *,
    flow_run_id: str | None,
    timeout: float,
    stale_after: timedelta,
    poll: float = 1.0,
) -> Iterator[WarehouseLock]:
    token = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    while True:
        try:
            acquired, holder = _try_acquire(target, name, token, flow_run_id, stale_after)
            busy = None
        except WarehouseBusy as exc:  # another process has the DuckDB file open
            acquired, holder, busy = False, None, str(exc)
        if acquired:
            break
        if time.monotonic() >= deadline:
            who = holder.describe() if holder else (busy or "another run")
            raise LockTimeout(
                f"another exigo-sync run holds the lock '{name}': {who}; gave up after "
                f"{timeout:.0f}s without calling queue.Refresh"
            )
        time.sleep(poll)
    lock = WarehouseLock(target, name, token)
    try:
        with connect(target) as con:
            lock.abandoned_batches = ledger.abandon_in_flight(
                con, f"abandoned: its run ended without finishing (found by {flow_run_id})"
            )
        yield lock
    finally:
        lock.release()


def ensure_concurrency_limit(name: str) -> None:
    """Create the strict global concurrency limit (limit 1) if it does not exist yet."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # a rival created it first: fine
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )


@contextmanager
def run_lock(
    target: Target,
    name: str,
    *,
    flow_run_id: str | None,
    timeout: float,
    stale_after: timedelta,
    poll: float = 1.0,
) -> Iterator[WarehouseLock]:
    """Hold both locks for the duration of one batch."""
    from prefect.concurrency.sync import concurrency

    ensure_concurrency_limit(name)
    start = time.monotonic()
    with ExitStack() as stack:
        try:
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=timeout, strict=True))
        except TimeoutError:
            holder = _safe_holder(target, name)
            raise LockTimeout(
                f"another exigo-sync run holds the concurrency limit '{name}'"
                f"{': ' + holder.describe() if holder else ''}; gave up after {timeout:.0f}s "
                "without calling queue.Refresh"
            ) from None
        remaining = max(0.0, timeout - (time.monotonic() - start))
        yield stack.enter_context(
            warehouse_lock(
                target, name, flow_run_id=flow_run_id, timeout=remaining,
                stale_after=stale_after, poll=poll,
            )
        )  # fmt: skip


def _safe_holder(target: Target, name: str) -> Holder | None:
    try:
        return read_holder(target, name)
    except WarehouseBusy:
        return None
