"""H9 with real flow runs: dbo.Payments reads empty for a while (a sync re-initialising, a
permissions change) — or the landed copy of its keys is empty — and the deletion sweep would
delete every payment. The guard deletes nothing, stops the batch naming the entity and the
numbers, and the next normal run merges; an operator's confirmation deletes exactly the keys
missing at the source, and a reconciliation reopens them when they come back (H7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.flow.helpers import SyncEnv, make_env


def _payments(env: SyncEnv) -> tuple[int, int]:
    """(live, deleted) payments in the current-state table."""
    rows = env.query(
        env.warehouse,
        "SELECT count(*) FILTER (WHERE NOT is_deleted), count(*) FILTER (WHERE is_deleted) "
        "FROM exigo_current.payments_current",
    )
    return rows[0]


@pytest.mark.parametrize(
    "landed", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["colocated", "landed"]
)
def test_h9_empty_source_table_deletes_nothing_until_confirmed(
    landed: bool,
    sim_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if landed:
        env = make_env(tmp_path / "env", sim_template, monkeypatch, landed=landed)
        env.run_ok()
    else:
        env = request.getfixturevalue("merged_env")  # co-located, batch 1 merged
    live, deleted = _payments(env)
    assert live > 20 and deleted == 0

    hidden = env.sim.empty_table("Payments")
    assert hidden == live
    state = env.run()
    assert state.is_failed()
    message = str(state.message)
    assert "deletion guard (H9): payments" in message and f"holds {live} live" in message
    assert "--confirm-deletions payments" in message
    assert _payments(env) == (live, 0)  # nothing deleted
    failed = env.batches()[-1]
    assert failed["status"] == "failed" and "H9" in failed["error"]

    env.sim.restore_table("Payments")
    env.run_ok()  # the source is back: the next normal run merges, deleting nothing
    assert _payments(env) == (live, 0)
    if landed:
        return  # the landed copy behaves as the source itself does; the rest is the same code

    # A real mass deletion, confirmed for one run: exactly the keys missing at the source go.
    env.sim.empty_table("Payments")
    out = env.run_ok(confirm_deletions=["payments"])
    assert _payments(env) == (0, live)
    stats: dict[str, Any] = {s["entity"]: s for s in out["stats"]}["payments"]
    assert (stats["closed"], stats["live_keys"], stats["missing_keys"]) == (live, live, live)
    # The keys come back (a restore): the nightly reconciliation reopens every one of them.
    env.sim.restore_table("Payments")
    out = env.run_ok(reconcile=True)
    assert _payments(env) == (live, 0)
    assert {s["entity"]: s for s in out["stats"]}["payments"]["reopened"] == live


def test_h9_guard_and_history_read_the_same_missing_keys(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The guard counts the missing keys on the batch's pinned copy of the source's keys, and
    the history models take their deletions from that same copy: a table re-initialising at
    the source after the guard passed (here: dbo.Payments emptied while the batch waits before
    dbt) cannot give every live key a deletion version. (Read live, the guard saw every key and
    passed, then history found none and deleted them all; the next batch reopened them all.)"""
    import threading
    import time

    env = sync_env
    env.run_ok()
    live, _ = _payments(env)
    marker, release = tmp_path / "held", tmp_path / "release"
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "before_dbt")
    monkeypatch.setenv("EXIGO_SYNC_FAULT_MODE", "hold")
    monkeypatch.setenv("EXIGO_SYNC_FAULT_MARKER", str(marker))
    monkeypatch.setenv("EXIGO_SYNC_FAULT_RELEASE", str(release))
    states: list[Any] = []
    batch = threading.Thread(target=lambda: states.append(env.run()))
    batch.start()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert batch.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        env.sim.empty_table("Payments")  # the sync re-initialises: dbo.Payments reads empty
    finally:
        release.touch()
        batch.join(timeout=300)
    assert states[0].is_completed(), states[0].message
    assert _payments(env) == (live, 0)  # no payment got a deletion version
    monkeypatch.delenv("EXIGO_SYNC_FAULT")
    env.sim.restore_table("Payments")
    env.run_ok()
    assert _payments(env) == (live, 0)  # and none was reopened (nothing was deleted)
