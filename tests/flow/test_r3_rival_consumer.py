"""R3: another consumer's `queue.Refresh` at any moment of our batch loses us nothing.

The rival is real: the simulator's own `queue.Refresh` with no start (what a fulfilment or
accounting integration on the vendor's recipe calls), run while our batch is held at a point
(EXIGO_SYNC_FAULT_MODE=hold) or from a thread firing at random moments. Without the pinned,
fingerprinted snapshot our batch would merge the rival's (tiny) window and move the watermark
past everything in between.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.source.duckdb_client import DuckDbSourceClient
from tests.flow.helpers import SyncEnv, advance, assert_current_equals_source


def _rival_refresh(source: Path) -> None:
    """Another consumer's `exec queue.Refresh` (no start: since the previous call, anyone's),
    retried while our batch has the simulator file open."""
    from exigo_sync.simulator import SyncSimulator

    deadline = time.monotonic() + 60
    while True:
        try:
            SyncSimulator(source).refresh()
            return
        except duckdb.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _run_held(env: SyncEnv, monkeypatch: pytest.MonkeyPatch, point: str, tmp: Path) -> Any:
    """Our batch, held at `point` while the rival refreshes the queue, then let go."""
    marker, release = tmp / "held", tmp / "release"
    monkeypatch.setenv("EXIGO_SYNC_FAULT", point)
    monkeypatch.setenv("EXIGO_SYNC_FAULT_MODE", "hold")
    monkeypatch.setenv("EXIGO_SYNC_FAULT_MARKER", str(marker))
    monkeypatch.setenv("EXIGO_SYNC_FAULT_RELEASE", str(release))
    states: list[Any] = []
    batch = threading.Thread(target=lambda: states.append(env.run()))
    batch.start()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert batch.is_alive() and time.monotonic() < deadline, "never reached " + point
            time.sleep(0.05)
        _rival_refresh(env.source)
    finally:
        release.touch()
        batch.join(timeout=300)
    monkeypatch.delenv("EXIGO_SYNC_FAULT")
    return states[0]


@pytest.mark.parametrize(
    ("topology", "point", "redone"),
    [
        # Between our refresh and our copy: the copy is the rival's, so we refresh again.
        ("colocated", "after_refresh", True),
        # Our copy pinned, dbt about to read: dbt reads only the copy; nothing to redo.
        pytest.param("colocated", "before_dbt", False, marks=pytest.mark.slow),
        # The snapshot streamed across table by table (a SQL Server source's path), the rival
        # in between two tables: half the copy is the rival's, so we refresh again.
        pytest.param("landed", "after_refresh", True, marks=pytest.mark.slow),
        pytest.param("landed", "during_land", True, marks=pytest.mark.slow),
    ],
)
def test_r3_rival_refresh_inside_our_batch_loses_nothing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, topology: str, point: str, redone: bool,
) -> None:  # fmt: skip
    """(A co-located DuckDB copy holds the simulator file until it is done: a rival there
    waits, as it would for our refresh.)"""
    if topology == "colocated":
        env = request.getfixturevalue("merged_env")  # batch 1, the full load, merged
    else:
        env = request.getfixturevalue("landed_env_factory")()
        env.run_ok()  # batch 1: the full load
    advance(env, 3)
    calls = env.refresh_calls()
    state = _run_held(env, monkeypatch, point, tmp_path)
    assert state.is_completed(), state.message
    # Ours, the rival's, and (when the rival replaced the queue before our copy) ours again.
    assert env.refresh_calls() == calls + (3 if redone else 2)
    assert env.batches()[-1]["status"] == "merged"
    env.run_ok(reconcile=True)
    assert assert_current_equals_source(env) > 0


def test_r3_rival_that_keeps_refreshing_fails_the_batch_loudly(
    merged_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rival that replaces the queue after each of our refreshes: after
    EXIGO_SYNC_SNAPSHOT_ATTEMPTS tries the batch stops naming R3, merges nothing, and the
    watermark stays, so the next run redoes the window."""
    env = merged_env  # batch 1 merged
    watermark = env.batches()[-1]["refresh_started_at"]
    advance(env, 2)
    monkeypatch.setenv("EXIGO_SYNC_SNAPSHOT_ATTEMPTS", "2")
    ours = DuckDbSourceClient.refresh

    def ours_then_rival(self: DuckDbSourceClient, start: Any) -> Any:
        result = ours(self, start)
        _rival_refresh(self.path)
        return result

    monkeypatch.setattr(DuckDbSourceClient, "refresh", ours_then_rival)
    calls = env.refresh_calls()
    state = env.run()
    assert state.is_failed()
    assert "another consumer's queue.Refresh replaced the queue tables" in str(state.message)
    assert "2 times" in str(state.message) and "(R3)" in str(state.message)
    assert env.refresh_calls() == calls + 4
    failed = env.batches()[-1]
    assert failed["status"] == "failed" and "R3" in failed["error"]
    merged = [b for b in env.batches() if b["status"] == "merged"]
    assert merged[-1]["refresh_started_at"] == watermark
    monkeypatch.undo()


@pytest.mark.slow  # in `make test-slow` (the T1 oracle with a rival: minutes)
def test_r3_rival_at_random_moments_t1_holds(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The T1 oracle with a rival consumer: while our batches run (three, with activity in
    between), another process calls queue.Refresh at random moments; after a final
    reconciliation every current-state table equals dbo. (The simulator is one DuckDB file: a
    refresh holds it for a moment, so each side sometimes finds it busy and retries, B5.)"""
    env = sync_env
    monkeypatch.setenv("EXIGO_SYNC_REFRESH_RETRIES", "6")
    monkeypatch.setenv("EXIGO_SYNC_REFRESH_RETRY_DELAY_SECONDS", "0.2")
    rng = random.Random(20261206)
    stop = threading.Event()
    fired: list[float] = []
    refresh = [sys.executable, "-m", "exigo_sync.cli", "simulate", "refresh", str(env.source)]
    # The simulated back office's own activity between our batches is not a queue consumer and
    # has no retry of its own: the rival waits while it writes the file.
    back_office_writing = threading.Lock()

    def rival() -> None:
        while not stop.wait(rng.uniform(0.05, 1.5)):
            with back_office_writing:
                if subprocess.run(refresh, capture_output=True, timeout=120).returncode == 0:
                    fired.append(time.monotonic())

    env.run_ok()
    thread = threading.Thread(target=rival, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            with back_office_writing:
                advance(env, 2)
            env.run_ok()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(fired) >= 3, "the rival never fired"
    env.run_ok(reconcile=True)
    assert assert_current_equals_source(env) > 0


def test_r3_fingerprint_names_what_differs() -> None:
    """The fingerprint of a snapshot tells a rival's window from ours, table by table."""
    from exigo_sync.snapshot import TableFingerprint, differences

    ours = {t: TableFingerprint(3, (6,), None, None) for t in REPLICATED_TABLES}
    rivals = dict(ours, Orders=TableFingerprint(1, (2,), None, None))
    assert differences(ours, ours) == []
    assert differences(ours, rivals) == ["queue.Orders: refreshed 3 rows, copied 1 rows"]
