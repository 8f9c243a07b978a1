"""One in-flight batch per source (R2), recovered from a dead holder without an operator (R1).

The authority is the lock row in the warehouse (`exigo_sync.run_lock`). Every way the job runs
(the CLI on its own Prefect API, `serve`, a deployment on a worker, two machines) writes to the
same warehouse, so only the row sees them all; and it knows its holder: host, pid, the pid's
process start (so a reused pid is not mistaken for the holder) and a heartbeat. The holder is
dead when its process is gone from this host, or when its heartbeat is older than
`stale_after` (its host is gone). A dead holder's row is taken over at once.

The Prefect global concurrency limit of the same name mirrors the row, so the Prefect UI shows
which run holds the source. It is taken after the row and returned before it, and it never has
the last word: a slot leaked by a run killed outright (Prefect's ephemeral API never expires
leases; a server only after the lease runs out) is returned by the run that takes over the dead
holder's row, which names the Prefect API and lease the holder used. See docs/architecture.md
("Recovery").
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from exigo_sync.processes import host_identity, local_process_gone, process_start_marker
from exigo_sync.profiles import Target
from exigo_sync.settings import Settings
from exigo_sync.warehouse import live_status
from exigo_sync.warehouse.connection import engine
from exigo_sync.warehouse.errors import WarehouseBusy
from exigo_sync.warehouse.ledger import Fence, Ledger, LockLost, utcnow

log = logging.getLogger(__name__)

# A Prefect lease must be at least 60 s (the server refuses less); renewed every heartbeat.
_LEASE_SECONDS = 300.0
# Tokens of the locks this process holds now: a row naming this pid with another token was left
# by an earlier batch of this same process (`serve`, a test session) and is not a live holder.
_HELD_TOKENS: set[str] = set()
# How long release() keeps trying while another process has the DuckDB file open.
_RELEASE_RETRY_SECONDS = 15.0


class LockTimeout(RuntimeError):
    """Another live run holds the lock for this source."""


@dataclass(frozen=True)
class LockOptions:
    """How a run waits for the lock, and when a silent holder counts as dead."""

    timeout: float  # seconds a run waits for a live holder before it stops (R2)
    stale_after: timedelta  # a holder on another host silent this long is dead (its host is gone)
    poll: float = 1.0
    heartbeat_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings, *, reconcile: bool = False) -> LockOptions:
        """A reconciliation waits longer for a batch in flight than a batch does (settings
        reconcile_lock_timeout_seconds): it must not lose its night to a 15-minute batch."""
        return cls(
            timeout=(
                max(settings.reconcile_lock_timeout_seconds, settings.lock_timeout_seconds)
                if reconcile
                else settings.lock_timeout_seconds
            ),
            stale_after=settings.stale_after,
            poll=settings.lock_poll_seconds,
            heartbeat_seconds=settings.lock_heartbeat_seconds,
        )


@dataclass(frozen=True)
class Holder:
    token: str
    flow_run_id: str | None
    host: str
    pid: int
    process_marker: str | None
    acquired_at: datetime
    heartbeat_at: datetime
    prefect_api: str | None = None
    prefect_lease_id: str | None = None
    released_at: datetime | None = None
    host_id: str | None = None  # hostname + machine id + pid namespace (rows written before: None)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Holder:
        return cls(**row)

    @property
    def on_this_host(self) -> bool:
        """The holder's pid means something here: same host, same pid namespace."""
        if self.host_id is not None:
            return self.host_id == host_identity()
        return self.host == socket.gethostname()

    def death(self, stale_after: timedelta, now: datetime | None = None) -> str | None:
        """Why this holder is dead (its lock may be taken over), or None while it lives.
        `now`: the warehouse's clock (Ledger.now), the clock the heartbeats were written on."""
        if self.released_at is not None:
            return "released (its Prefect slot is returned by the next run)"
        if self.on_this_host:
            if self.pid == os.getpid() and self.token not in _HELD_TOKENS:
                return "left behind by an earlier batch of this process"
            # Alive on this host: a slow batch, not a dead one (the flow timeout ends hung runs).
            return local_process_gone(self.pid, self.process_marker)
        silent = (now or utcnow()) - self.heartbeat_at
        if silent > stale_after:
            return f"no heartbeat for {silent} (host {self.host} unreachable or the run hung)"
        return None

    def describe(self) -> str:
        run = f"flow run {self.flow_run_id}" if self.flow_run_id else "a run"
        return (
            f"{run} on {self.host} (pid {self.pid}) since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
            f", last heartbeat {self.heartbeat_at:%H:%M:%S} UTC"
        )


def read_holder(ledger: Ledger, name: str) -> Holder | None:
    row = ledger.lock_row(name)
    return Holder.from_row(row) if row else None


def lock_holder(target: Target, name: str) -> Holder | None:
    """Who holds the lock now, read without writing anything."""
    with Ledger.open(target, read_only=True) as ledger:
        return read_holder(ledger, name)


def _try_acquire(
    target: Target, name: str, token: str, flow_run_id: str | None, stale_after: timedelta
) -> tuple[bool, Holder | None]:
    """One attempt. Returns (acquired, holder): on success the previous holder whose dead row
    we took over (if any), otherwise the live holder that keeps us waiting."""
    me = [
        flow_run_id, socket.gethostname(), host_identity(), os.getpid(),
        process_start_marker(os.getpid()),
    ]  # fmt: skip
    previous: Holder | None = None
    with Ledger.open(target, busy_wait=0) as ledger:
        row = ledger.lock_row(name)
        now = ledger.now()
        if row is None:
            # Losing the race for the primary key means someone else holds it: re-read below.
            with contextlib.suppress(Exception):
                ledger.insert_lock(name, token, me, now)
        else:
            previous = Holder.from_row(row)
            if previous.death(stale_after, now) is not None:
                ledger.take_over_lock(name, token, me, now, previous.token)
        row = ledger.lock_row(name)
    current = Holder.from_row(row) if row else None
    if current is not None and current.token == token:
        return True, previous
    return False, current


@dataclass
class RunLock:
    """The lock of one batch: the warehouse row, and the Prefect slot mirroring it."""

    target: Target
    name: str
    token: str
    stale_after: timedelta
    abandoned_batches: int = 0
    taken_over: Holder | None = None
    slot: PrefectSlot | None = None
    # Why this run no longer holds the lock (a heartbeat found its token gone), or None.
    lost: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def fence(self) -> Fence:
        """What the batch's ledger writes are conditional on (R2)."""
        return Fence(self.name, self.token)

    @property
    def concurrent_heartbeat(self) -> bool:
        # DuckDB admits one process per file: the heartbeat of a DuckDB lock is beaten between
        # steps by the flow, never while dbt (another process) has the file open.
        return engine(self.target) != "duckdb"

    def heartbeat(self) -> None:
        """Beat the row; LockLost when the row no longer carries this run's token (it was
        taken over while this run was paused or cut off)."""
        with Ledger.open(self.target) as ledger:
            if ledger.beat_lock(self.name, self.token) == 0:
                self.lost = "the lock row no longer carries this run's token"
        self.check()

    def check(self) -> None:
        """LockLost if a heartbeat found the lock gone (R2: stop before writing anything)."""
        if self.lost is not None:
            raise LockLost(
                f"this run lost the lock '{self.name}' ({self.lost}): another run took it over "
                "and redoes this batch's window; stopping without writing (R2)"
            )

    def record_slot(self, api: str | None, lease_id: str | None) -> None:
        with Ledger.open(self.target) as ledger:
            ledger.record_lock_slot(self.name, self.token, api, lease_id)

    def keep_alive(self, every: float) -> None:
        """Renew the Prefect lease (and, where the engine allows it, beat the row) until
        released, from a thread that carries this thread's Prefect settings."""
        context = contextvars.copy_context()
        threading.Thread(
            target=context.run, args=(self._keep_alive, every), name="exigo-sync-lock",
            daemon=True,
        ).start()  # fmt: skip

    def _keep_alive(self, every: float) -> None:
        while not self._stop.wait(every):
            if self.slot is not None:
                self.slot.renew()
            if self.concurrent_heartbeat:
                try:
                    self.heartbeat()
                except LockLost:
                    return  # the main thread stops at its next step (RunLock.check)
                except Exception as exc:  # the next beat may work; staleness is minutes away
                    log.warning(
                        "could not beat the lock heartbeat: %s", self.target.scrub(str(exc))
                    )

    def release(self) -> None:
        """Return the Prefect slot, then the row. Never raises: a row that cannot be deleted
        names this process, and the next run takes it over once the process has ended."""
        self._stop.set()
        slot_returned = self.slot.release() if self.slot is not None else True
        try:
            with Ledger.open(self.target, busy_wait=_RELEASE_RETRY_SECONDS) as ledger:
                ledger.release_lock(self.name, self.token, slot_returned=slot_returned)
        except Exception as exc:
            log.error("could not release the lock row: %s", self.target.scrub(str(exc)))
        finally:
            _HELD_TOKENS.discard(self.token)


def acquire_row(
    target: Target,
    name: str,
    *,
    flow_run_id: str | None,
    timeout: float,
    stale_after: timedelta,
    poll: float = 1.0,
) -> RunLock:
    """Wait up to `timeout` for the lock row; take it over from a dead holder."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    # Registered before the row names it: another thread of this process that reads the row
    # in between must see a live holder, not a row "left behind by an earlier batch".
    _HELD_TOKENS.add(token)
    while True:
        # DuckDB: while a live batch holds the warehouse file, do not open it to read the lock
        # row: a waiting run's open at the moment the batch's dbt connects fails that dbt.
        running = live_status.running_batch(target, stale_after)
        try:
            if running is not None:
                acquired, holder, busy = False, None, running.describe()
            else:
                acquired, holder = _try_acquire(target, name, token, flow_run_id, stale_after)
                busy = None
        except WarehouseBusy as exc:  # another process has the DuckDB file open
            acquired, holder, busy = False, None, str(exc)
        except BaseException:
            _HELD_TOKENS.discard(token)
            raise
        if acquired:
            lock = RunLock(target, name, token, stale_after, taken_over=holder)
            break
        if time.monotonic() >= deadline:
            _HELD_TOKENS.discard(token)
            who = holder.describe() if holder else (busy or "another run")
            raise LockTimeout(
                f"another exigo-sync run holds the lock '{name}': {who}; gave up after "
                f"{timeout:.0f}s without calling queue.Refresh"
            )
        time.sleep(poll)
    try:
        with Ledger.open(target, fence=lock.fence) as ledger:
            lock.abandoned_batches = ledger.abandon_in_flight(
                f"abandoned: its run ended without finishing (found by {flow_run_id})"
            )
    except BaseException:
        lock.release()
        raise
    return lock


@contextlib.contextmanager
def warehouse_lock(
    target: Target,
    name: str,
    *,
    flow_run_id: str | None,
    timeout: float,
    stale_after: timedelta,
    poll: float = 1.0,
) -> Iterator[RunLock]:
    """The lock row alone (no Prefect): for code that runs outside a flow."""
    lock = acquire_row(
        target, name, flow_run_id=flow_run_id, timeout=timeout, stale_after=stale_after,
        poll=poll,
    )  # fmt: skip
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def run_lock(
    target: Target, name: str, *, flow_run_id: str | None, options: LockOptions
) -> Iterator[RunLock]:
    """Hold the lock row and its Prefect slot for one batch; release both on the way out,
    whatever ends the batch (an exception, SIGTERM, a flow timeout)."""
    start = time.monotonic()
    timeout = options.timeout
    lock = acquire_row(
        target, name, flow_run_id=flow_run_id, timeout=timeout,
        stale_after=options.stale_after, poll=options.poll,
    )  # fmt: skip
    try:
        api = current_prefect_api()
        if lock.taken_over is not None and lock.taken_over.prefect_api == api:
            returned = return_leaked_slot(name, lock.taken_over)
            if returned:
                log.warning("returned %s", returned)
        lock.record_slot(api, None)
        remaining = max(0.0, timeout - (time.monotonic() - start))
        lock.slot = PrefectSlot.acquire(name, flow_run_id=flow_run_id, timeout=remaining)
        lock.record_slot(api, lock.slot.lease_id)
        lock.keep_alive(options.heartbeat_seconds)
        yield lock
    finally:
        lock.release()


# --- the Prefect mirror --------------------------------------------------------------------


def current_prefect_api() -> str:
    """Which Prefect database a slot lives in: a server's URL, or the PREFECT_HOME of a
    private API (exigo_sync.prefect_api), whose leases die with the process that started it."""
    from prefect.settings import get_current_settings

    from exigo_sync.prefect_api import private_api_home

    url = get_current_settings().api.url
    home = private_api_home(url)
    return f"ephemeral:{home}" if home is not None else f"server:{url}"


def ensure_concurrency_limit(name: str) -> None:
    """Create the global concurrency limit (limit 1) if it does not exist yet."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # a rival created it first: fine
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )


def return_leaked_slot(name: str, dead: Holder) -> str | None:
    """Give back the slot a dead holder took on this Prefect API; say what was done.

    - its lease still exists (a server, before the lease ran out): release it by lease;
    - the lease is gone and the holder used a private API (leases lived in the memory of its
      server, which died with it): the slot can only be counted down, once;
    - the lease is gone on a server: the server already returned it when the lease expired.
    """
    from httpx import HTTPStatusError
    from prefect import get_client

    with get_client(sync_client=True) as client:
        if dead.prefect_lease_id:
            try:
                client.renew_concurrency_lease(uuid.UUID(dead.prefect_lease_id), 60)
            except HTTPStatusError:
                pass  # gone: see below
            else:
                client.release_concurrency_slots_with_lease(uuid.UUID(dead.prefect_lease_id))
                return f"the Prefect slot of dead run {dead.flow_run_id} (lease released)"
        if not (dead.prefect_api or "").startswith("ephemeral:"):
            return None
        limit = client.read_global_concurrency_limit_by_name(name)
        # Without a recorded lease the holder may have died before its slot was granted:
        # count down only a limit that is full, so a slot someone else holds is never freed.
        leaked = (
            limit.active_slots > 0 if dead.prefect_lease_id else limit.active_slots >= limit.limit
        )
        if not leaked:
            return None
        held = (utcnow() - dead.acquired_at).total_seconds()
        client.release_concurrency_slots([name], 1, max(held, 0.0))
        return f"the Prefect slot leaked by dead run {dead.flow_run_id} (counted down)"


@dataclass
class PrefectSlot:
    """One slot of the source's Prefect global concurrency limit, held under a lease."""

    name: str
    lease_id: str

    @classmethod
    def acquire(cls, name: str, *, flow_run_id: str | None, timeout: float) -> PrefectSlot:
        from httpx import HTTPStatusError
        from prefect import get_client
        from prefect.client.schemas.objects import ConcurrencyLeaseHolder

        ensure_concurrency_limit(name)
        try:  # the Prefect UI links a slot to the flow run holding it
            holder = ConcurrencyLeaseHolder(type="flow_run", id=uuid.UUID(str(flow_run_id)))
        except ValueError:
            holder = None
        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while True:
                try:
                    response = client.increment_concurrency_slots_with_lease(
                        names=[name], slots=1, mode="concurrency",
                        lease_duration=_LEASE_SECONDS, holder=holder,
                    )  # fmt: skip
                    return cls(name, str(response.json()["lease_id"]))
                except HTTPStatusError as exc:
                    if exc.response.status_code != 423:  # 423 Locked: no free slot
                        raise
                    wait = float(exc.response.headers.get("Retry-After") or 1.0)
                if time.monotonic() + min(wait, 1.0) > deadline:
                    raise LockTimeout(
                        f"the Prefect concurrency limit '{name}' is held by a run that does not "
                        f"hold this warehouse's lock (another warehouse syncing the same "
                        f"source?); gave up after {timeout:.0f}s without calling queue.Refresh"
                    )
                time.sleep(min(wait, 1.0))

    def renew(self) -> None:
        from prefect import get_client

        try:
            with get_client(sync_client=True) as client:
                client.renew_concurrency_lease(uuid.UUID(self.lease_id), _LEASE_SECONDS)
        except Exception as exc:  # the mirror may lapse; the warehouse row still holds
            log.warning("could not renew the Prefect concurrency lease: %s", exc)

    def release(self) -> bool:
        """Return the slot; False when the API could not be reached (the slot leaked)."""
        from prefect import get_client

        try:
            with get_client(sync_client=True) as client:
                client.release_concurrency_slots_with_lease(uuid.UUID(self.lease_id))
        except Exception as exc:
            log.warning("could not return the Prefect concurrency slot: %s", exc)
            return False
        return True
