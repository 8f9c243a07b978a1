"""R1/R2 at the lock level, on every warehouse engine (the `warehouse` fixture: a real DuckDB file,
and SQL Server where a server is configured) and a real Prefect API (the session's test API): a
live holder makes a rival wait and give up naming it; a dead holder (its process gone from this
host, its pid reused by another process, or on another host with a stale heartbeat) is taken
over at once, and the Prefect slot it leaked is returned. Only the upgrade of an older lock table
plants engine-specific state (DuckDB DDL) and runs on DuckDB alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from exigo_sync.processes import process_start_marker
from exigo_sync.profiles import Target
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.ledger import Fence, Ledger, utcnow
from exigo_sync.warehouse.lock import (
    LockOptions,
    LockTimeout,
    PrefectSlot,
    current_prefect_api,
    lock_holder,
    run_lock,
    warehouse_lock,
)
from tests.warehouse.engines import duckdb_target

HOUR = timedelta(hours=1)


def _plant_lock(
    t: Target,
    pid: int,
    *,
    host: str | None = None,
    marker: str | None = None,
    heartbeat_age: timedelta = timedelta(0),
    name: str = "L",
) -> None:
    """A lock row as another run would have left it."""
    with Ledger.open(t) as led:
        now = led.now()
        led.con.execute(
            q.INSERT_LOCK,
            [name, "old-token", "old-run", host or socket.gethostname(), None, pid, marker, now,
             now - heartbeat_age],
        )  # fmt: skip


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_r2_live_holder_blocks_then_named(warehouse: Target) -> None:
    t = warehouse
    first = warehouse_lock(t, "L", flow_run_id="first", timeout=1, stale_after=HOUR)
    rival = warehouse_lock(t, "L", flow_run_id="second", timeout=0.5, stale_after=HOUR, poll=0.1)
    named = r"flow run first on .* since .*queue\.Refresh"
    with first, pytest.raises(LockTimeout, match=named), rival:
        pass
    assert lock_holder(t, "L") is None  # released on exit


def test_r1_dead_pid_lock_taken_over_and_in_flight_batch_abandoned(warehouse: Target) -> None:
    t = warehouse
    _plant_lock(t, _dead_pid())
    with Ledger.open(t) as led:
        led.con.execute(q.INSERT_BATCH, [7, "old-run", "duckdb", "watermark", utcnow(),
                                         utcnow(), 0])  # fmt: skip
    with warehouse_lock(t, "L", flow_run_id="new", timeout=1, stale_after=HOUR) as lock:
        assert lock.abandoned_batches == 1
        assert lock.taken_over is not None and lock.taken_over.flow_run_id == "old-run"
        assert lock_holder(t, "L").flow_run_id == "new"  # type: ignore[union-attr]
    with Ledger.open(t) as led:
        b = led.get_batch(7)
    assert b is not None and b["status"] == "failed" and b["error"].startswith("abandoned")


def test_r1_reused_pid_is_not_the_holder(warehouse: Target) -> None:
    """The holder's pid now runs another process (the parent of this test): taken over."""
    t = warehouse
    _plant_lock(t, os.getppid(), marker="another-boot:12345")
    with warehouse_lock(t, "L", flow_run_id="new", timeout=1, stale_after=HOUR):
        assert lock_holder(t, "L").flow_run_id == "new"  # type: ignore[union-attr]


def test_r2_live_holder_on_this_host_is_never_stale(warehouse: Target) -> None:
    """A slow batch on this host is alive however old its heartbeat (DuckDB beats only
    between steps): its lock is not taken."""
    t = warehouse
    parent = os.getppid()
    _plant_lock(t, parent, marker=process_start_marker(parent), heartbeat_age=2 * HOUR)
    rival = warehouse_lock(t, "L", flow_run_id="new", timeout=0.3, stale_after=HOUR, poll=0.1)
    with pytest.raises(LockTimeout, match="old-run"), rival:
        pass


def test_r1_holder_on_a_lost_host_taken_over_after_stale_time(warehouse: Target) -> None:
    t = warehouse
    _plant_lock(t, 1, host="host-that-died", heartbeat_age=timedelta(minutes=5))
    rival = warehouse_lock(t, "L", flow_run_id="new", timeout=0.3, stale_after=HOUR, poll=0.1)
    with pytest.raises(LockTimeout, match="host-that-died"), rival:
        pass
    with warehouse_lock(
        t, "L", flow_run_id="new", timeout=1, stale_after=timedelta(minutes=4)
    ) as lock:
        assert lock.taken_over is not None and lock.taken_over.host == "host-that-died"


def test_r1_row_left_by_an_earlier_batch_of_this_process_taken_over(warehouse: Target) -> None:
    """`serve` and test sessions run many batches in one process: a row naming this pid but
    not held by it is a leftover (e.g. its delete failed), not a live holder."""
    t = warehouse
    _plant_lock(t, os.getpid(), marker=process_start_marker(os.getpid()))
    with warehouse_lock(t, "L", flow_run_id="new", timeout=1, stale_after=HOUR) as lock:
        assert lock.taken_over is not None and lock.taken_over.token == "old-token"


def test_ledger_schema_upgrades_an_older_lock_table(tmp_path: Path) -> None:
    """A warehouse made before the lock knew process markers and Prefect leases gets the new
    columns on first use, with no manual step. (DuckDB only: it plants DuckDB DDL; the T-SQL
    upgrade is tests/warehouse/test_sqlserver_engine.py's, through the recording double.)"""
    t = duckdb_target(tmp_path)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("CREATE SCHEMA exigo_sync")
    con.execute(
        "CREATE TABLE exigo_sync.run_lock (lock_name VARCHAR(200) NOT NULL PRIMARY KEY, "
        "token VARCHAR(64) NOT NULL, flow_run_id VARCHAR, host VARCHAR, pid INTEGER, "
        "acquired_at TIMESTAMP NOT NULL, heartbeat_at TIMESTAMP NOT NULL)"
    )
    con.close()
    with warehouse_lock(t, "L", flow_run_id="new", timeout=1, stale_after=HOUR):
        holder = lock_holder(t, "L")
    assert holder is not None and holder.process_marker == process_start_marker(os.getpid())


# --- the Prefect slot that mirrors the row ------------------------------------------------


def _active_slots(name: str) -> int:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def test_r1_slot_leaked_by_a_dead_holder_is_returned_by_lease(
    prefect_api: str, warehouse: Target
) -> None:
    """On a Prefect API that still knows the dead holder's lease (a server, before the lease
    runs out) the slot is released by that lease, and the next run gets the slot."""
    t = warehouse
    name = f"lock-{uuid.uuid4().hex[:8]}"
    leaked = PrefectSlot.acquire(name, flow_run_id=None, timeout=5)  # the dead run's slot
    _plant_lock(t, _dead_pid(), name=name)
    with Ledger.open(t) as led:
        led.record_lock_slot(name, "old-token", current_prefect_api(), leaked.lease_id)
    assert _active_slots(name) == 1
    with run_lock(t, name, flow_run_id=None, options=LockOptions(5, HOUR)) as lock:
        assert lock.slot is not None and lock.slot.lease_id != leaked.lease_id
        assert _active_slots(name) == 1  # ours: the dead one was returned first
        holder = lock_holder(t, name)
        assert holder is not None and holder.prefect_lease_id == lock.slot.lease_id
    assert _active_slots(name) == 0
    assert lock_holder(t, name) is None


def _leak_bare_count(name: str) -> None:
    """A slot counted in the limit whose lease no longer exists anywhere: what a run on a
    private Prefect API leaves when it is killed (the API's leases died with it)."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    PrefectSlot.acquire(name, flow_run_id=None, timeout=5)
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))


@pytest.mark.parametrize("lease_recorded", [True, False])
def test_r1_slot_leaked_on_a_private_api_is_counted_down_once(
    prefect_api: str,
    warehouse: Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lease_recorded: bool,
) -> None:
    """The dead holder used the same private Prefect API (same PREFECT_HOME) as this run: its
    bare count is counted down once, and this run takes the slot. Without a recorded lease
    (killed while asking for it) the count goes down only because the limit is full."""
    from prefect.settings import get_current_settings

    from exigo_sync.prefect_api import PRIVATE_API_ENV

    monkeypatch.setenv(
        PRIVATE_API_ENV, f"{get_current_settings().api.url} {tmp_path / 'prefect-home'}"
    )
    t = warehouse
    name = f"lock-{uuid.uuid4().hex[:8]}"
    _leak_bare_count(name)
    _plant_lock(t, _dead_pid(), name=name)
    lease = str(uuid.uuid4()) if lease_recorded else None
    with Ledger.open(t) as led:
        led.record_lock_slot(name, "old-token", current_prefect_api(), lease)
    with run_lock(t, name, flow_run_id=None, options=LockOptions(5, HOUR)):
        assert _active_slots(name) == 1
    assert _active_slots(name) == 0


def test_r2_slot_leaked_on_another_prefect_api_is_not_ours_to_return(
    prefect_api: str, warehouse: Target
) -> None:
    """The dead holder's slot lives in another Prefect database: nothing here is counted
    down; the occupied slot on this API belongs to someone else and blocks."""
    t = warehouse
    name = f"lock-{uuid.uuid4().hex[:8]}"
    _leak_bare_count(name)
    _plant_lock(t, _dead_pid(), name=name)
    with Ledger.open(t) as led:
        led.record_lock_slot(name, "old-token", "ephemeral:/elsewhere", str(uuid.uuid4()))
    rival = run_lock(t, name, flow_run_id=None, options=LockOptions(1, HOUR))
    with pytest.raises(LockTimeout, match="Prefect concurrency limit"), rival:
        pass
    assert _active_slots(name) == 1


def test_r2_slot_held_by_a_live_run_elsewhere_blocks(prefect_api: str, warehouse: Target) -> None:
    """A run that holds the Prefect slot but not this warehouse's row (another warehouse fed
    by the same source) is never robbed of it: we wait, then stop naming the limit."""
    t = warehouse
    name = f"lock-{uuid.uuid4().hex[:8]}"
    other = PrefectSlot.acquire(name, flow_run_id=None, timeout=5)
    rival = run_lock(t, name, flow_run_id=None, options=LockOptions(1, HOUR))
    try:
        with pytest.raises(LockTimeout, match="Prefect concurrency limit"), rival:
            pass
        assert _active_slots(name) == 1
        assert lock_holder(t, name) is None  # the row was given back too
    finally:
        other.release()


def test_r2_a_run_that_lost_its_lock_writes_nothing(warehouse: Target) -> None:
    """Fencing: a holder paused past the stale time and taken over (here: its row taken by
    compare-and-swap, as a rival does) finds every later write refused: the ledger's batch
    writes raise LockLost and change nothing, its heartbeat raises, its release removes
    nothing of the new holder's; the new holder's writes go through."""
    from exigo_sync.source import RefreshResult
    from exigo_sync.warehouse.ledger import LockLost

    with warehouse_lock(warehouse, "L", flow_run_id="paused", timeout=1, stale_after=HOUR) as old:
        with Ledger.open(warehouse, fence=old.fence) as led:
            batch = led.start_batch(
                flow_run_id="paused", target_name="w", window_kind="watermark",
                requested_start=datetime(2026, 1, 5),
            )  # fmt: skip
        # Another run decides the holder is dead and takes the row over (R1's CAS).
        with Ledger.open(warehouse) as led:
            taken = led.take_over_lock(
                "L", "new-token", ["rival", "otherhost", "otherhost|x", 1, None], led.now(),
                old.token,
            )  # fmt: skip
        assert taken == 1
        refreshed = RefreshResult(None, datetime(2026, 1, 5, 1), datetime(2026, 1, 5, 1))
        with Ledger.open(warehouse, fence=old.fence) as led:
            with pytest.raises(LockLost, match=r"lost the lock 'L'.*R2"):
                led.mark_refreshed(batch, refreshed)
            with pytest.raises(LockLost):
                led.mark_merged(batch, None, [])
            with pytest.raises(LockLost):
                led.start_batch(
                    flow_run_id="paused", target_name="w", window_kind="watermark",
                    requested_start=datetime(2026, 1, 5),
                )  # fmt: skip
            assert led.get_batch(batch)["status"] == "refreshing"
            assert led.get_batch(batch + 1) is None
        with pytest.raises(LockLost, match="R2"):
            old.heartbeat()
    # The paused run's release (on the way out) left the new holder's row alone.
    assert lock_holder(warehouse, "L").token == "new-token"  # type: ignore[union-attr]
    with Ledger.open(warehouse, fence=Fence("L", "new-token")) as led:
        led.mark_refreshed(batch, refreshed)
        assert led.get_batch(batch)["status"] == "refreshed"


def test_r2_lock_times_are_on_the_warehouse_clock(warehouse: Target) -> None:
    """Heartbeats are written, and judged stale, on the warehouse's clock, never one host's
    against another's."""
    with warehouse_lock(warehouse, "L", flow_run_id="r", timeout=1, stale_after=HOUR) as lock:
        lock.heartbeat()
        holder = lock_holder(warehouse, "L")
        with Ledger.open(warehouse) as led:
            now = led.now()
        assert holder is not None
        assert abs(now - holder.heartbeat_at) < timedelta(seconds=30)


def _own_pid_namespace() -> str | None:
    """Why a process cannot be started in a pid namespace of its own here, or None."""
    if os.geteuid() != 0:
        return "needs root for a pid namespace (unshare --pid)"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True
    )
    return None if probe.returncode == 0 else f"unshare --pid failed: {probe.stderr!r}"


def test_r2_two_containers_sharing_a_hostname_are_two_hosts(tmp_path: Path) -> None:
    """A holder in another pid namespace (another container) with the same hostname: its pid
    means nothing here, so it is judged by its heartbeat like a holder on another host, never
    by a pid of this namespace (pid 1 is alive here, but it is not the holder)."""
    if reason := _own_pid_namespace():
        pytest.skip(reason)
    t = duckdb_target(tmp_path)
    marker, release = tmp_path / "held", tmp_path / "release"
    holder = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m",
         "tests.warehouse.hold_lock", str(t.warehouse_path()), "L", str(marker), str(release)],
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder never held"
            time.sleep(0.05)
        seen = lock_holder(t, "L")
        assert seen is not None and seen.host == socket.gethostname() and not seen.on_this_host
        rival = warehouse_lock(t, "L", flow_run_id="here", timeout=1, stale_after=HOUR, poll=0.1)
        with pytest.raises(LockTimeout, match="holder-elsewhere"), rival:
            pass
        # Silent beyond the stale time (it beats only between a batch's steps): taken over.
        time.sleep(1.2)
        stale = timedelta(seconds=1)
        with warehouse_lock(t, "L", flow_run_id="here", timeout=2, stale_after=stale) as lock:
            assert lock.taken_over is not None
            assert lock.taken_over.flow_run_id == "holder-elsewhere"
    finally:
        release.touch()
        holder.wait(timeout=30)
