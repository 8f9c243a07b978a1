"""R2: one in-flight batch per source; R3: a rival consumer of queue.Refresh loses us nothing."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exigo_sync.settings import Settings
from exigo_sync.warehouse.lock import LockOptions, lock_holder, run_lock
from tests.flow.helpers import SyncEnv, advance


def _target() -> tuple:
    s = Settings()
    topology = s.topology_for()
    return topology.warehouse, topology.lock_name(s.source_name)


def test_r2_loser_waits_then_stops_naming_the_holder(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXIGO_SYNC_LOCK_TIMEOUT_SECONDS", "1.5")
    tgt, name = _target()
    # Someone else (here: this test, as "flow run rival-run") holds both locks.
    with run_lock(tgt, name, flow_run_id="rival-run", options=LockOptions(5, timedelta(hours=1))):
        t0 = time.monotonic()
        state = sync_env.run()
        waited = time.monotonic() - t0
    assert state.is_failed()
    msg = str(state.message)
    assert "holds" in msg and "rival-run" in msg and socket.gethostname() in msg and "since" in msg
    assert waited >= 1.5
    # The loser never called queue.Refresh and recorded no batch.
    assert sync_env.refresh_calls() == 0
    assert sync_env.batches() == []


def test_r2_two_runs_at_once_exactly_one_refreshes(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXIGO_SYNC_LOCK_TIMEOUT_SECONDS", "2")
    tgt, name = _target()
    states: dict[str, object] = {}
    first = threading.Thread(target=lambda: states.setdefault("first", sync_env.run()))
    first.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.is_alive():
        try:
            if lock_holder(tgt, name) is not None:
                break
        except Exception:  # the warehouse file may be busy or not created yet
            pass
        time.sleep(0.05)
    second = sync_env.run()
    first.join(timeout=300)
    assert states["first"].is_completed(), states["first"].message
    assert second.is_failed() and "holds the" in str(second.message)
    assert sync_env.refresh_calls() == 1
    assert [b["status"] for b in sync_env.batches()] == ["merged"]


# In `make test-slow`: test_r3_rival_consumer.py proves the harder case, inside a batch.
@pytest.mark.slow
def test_r3_rival_consumer_between_runs_loses_nothing(sync_env: SyncEnv) -> None:
    env = sync_env
    env.run_ok()
    # Another consumer calls queue.Refresh (no start: "since the last call") twice between our
    # runs, moving the procedure's hidden state past changes we have not merged yet.
    for _ in range(2):
        advance(env, 2)
        env.sim.refresh()
    advance(env, 1)
    env.run_ok()
    since = env.batches()[0]["requested_start"]
    for table, key, current in (
        ("Customers", "CustomerID", "exigo_current.customers_current"),
        ("Orders", "OrderID", "exigo_current.orders_current"),
        ("Payments", "PaymentID", "exigo_current.payments_current"),
    ):
        truth = {
            (r[key], r["ModifiedDate"])
            for r in env.sim.current_rows(table)
            if r["ModifiedDate"] >= since
        }
        snake = {"CustomerID": "customer_id", "OrderID": "order_id", "PaymentID": "payment_id"}[key]
        merged = set(
            env.query(
                env.warehouse,
                f"SELECT {snake}, modified_date FROM {current} WHERE NOT is_deleted",
            )
        )
        assert truth and truth <= merged, f"{table}: {len(truth - merged)} changes lost"


def test_r2_nightly_reconciliation_waits_for_a_batch_in_flight(
    merged_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A batch and the nightly reconciliation fire at the same minute (*/15 and 30 2 * * *):
    the reconciliation, the only run that finds deletions the queue cannot show, waits for the
    batch in flight (EXIGO_SYNC_RECONCILE_LOCK_TIMEOUT_SECONDS) where a batch would give up
    (EXIGO_SYNC_LOCK_TIMEOUT_SECONDS); it runs as soon as the batch is done."""
    env = merged_env  # batch 1 merged
    monkeypatch.setenv("EXIGO_SYNC_LOCK_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("EXIGO_SYNC_RECONCILE_LOCK_TIMEOUT_SECONDS", "120")
    marker, release = tmp_path / "held", tmp_path / "release"
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "before_dbt")
    monkeypatch.setenv("EXIGO_SYNC_FAULT_MODE", "hold")
    monkeypatch.setenv("EXIGO_SYNC_FAULT_MARKER", str(marker))
    monkeypatch.setenv("EXIGO_SYNC_FAULT_RELEASE", str(release))
    states: dict[str, Any] = {}
    batch = threading.Thread(target=lambda: states.setdefault("batch", env.run()))
    batch.start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert batch.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    monkeypatch.delenv("EXIGO_SYNC_FAULT")
    nightly = threading.Thread(target=lambda: states.setdefault("nightly", env.run(reconcile=True)))
    nightly.start()
    time.sleep(6)  # three times the batch's lock timeout: a batch would have given up
    assert nightly.is_alive(), "the reconciliation gave up while the batch was in flight"
    release.touch()
    batch.join(timeout=300)
    nightly.join(timeout=300)
    assert states["batch"].is_completed(), states["batch"].message
    assert states["nightly"].is_completed(), states["nightly"].message
    merged = [b for b in env.batches() if b["status"] == "merged"]
    assert merged[-1]["reconciled"] == 1
