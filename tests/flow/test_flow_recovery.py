"""R1: after a crash at any point, the next normal run leaves exactly the tables an uninterrupted
run would. Compared without `batch_id` (and wall-clock load columns): a crashed batch consumes a
ledger id, so "which batch first saw a version" differs by construction, not by content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.flow.helpers import SyncEnv, copy_files, make_env, table_diff


def _fresh(
    r1_start: dict[str, Any], tmp_path: Path, mp: pytest.MonkeyPatch, *, landed: bool = False
) -> SyncEnv:
    env = make_env(tmp_path / "env", r1_start["start"].source, mp, landed=landed)
    copy_files(r1_start["start"], env)
    return env


def _crash_then_recover(env: SyncEnv, point: str, mp: pytest.MonkeyPatch) -> None:
    calls = env.refresh_calls()
    mp.setenv("EXIGO_SYNC_FAULT", point)
    state = env.run()
    assert state.is_failed()
    assert "watermark unchanged" in state.message or point in str(
        state.result(raise_on_failure=False)
    )
    mp.delenv("EXIGO_SYNC_FAULT")
    crashed = env.batches()[-1]
    assert crashed["batch_id"] == 2 and crashed["status"] == "failed"
    assert point in crashed["error"]
    # The refresh happened only if the crash came after it.
    assert env.refresh_calls() == calls + (0 if point == "before_refresh" else 1)
    env.run_ok()
    last = env.batches()[-1]
    assert (last["batch_id"], last["status"]) == (3, "merged")
    # The recovery batch started from the watermark of batch 1, not of the crashed batch (L2).
    assert last["requested_start"] == env.batches()[1]["requested_start"]


@pytest.mark.parametrize(
    ("point", "landed"),
    [
        pytest.param("before_refresh", False, marks=pytest.mark.slow),
        pytest.param("after_refresh", False, marks=pytest.mark.slow),
        ("before_current", False),
        pytest.param("after_dbt", False, marks=pytest.mark.slow),
        # Landed topology: the copy dies after its first table (nothing is swapped in), and a
        # crash between history and current state with dbt reading the landed copy.
        ("during_land", True),
        pytest.param("before_current", True, marks=pytest.mark.slow),
    ],
    ids=lambda v: v if isinstance(v, str) else ("landed" if v else "colocated"),
)
def test_r1_crash_recovers(
    point: str,
    landed: bool,
    r1_start: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The next normal run leaves exactly the tables an uninterrupted (co-located) run leaves:
    in the landed topology too, whose copy of the snapshot must change nothing."""
    env = _fresh(r1_start, tmp_path, monkeypatch, landed=landed)
    _crash_then_recover(env, point, monkeypatch)
    assert not table_diff(env.snapshot(), r1_start["expected"])


def test_r1_landing_that_dies_half_way_merges_nothing(
    r1_start: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy of batch 2 dies after its first table: history and current are untouched, and
    the landing still holds batch 1's complete copy, which dbt would refuse for batch 2."""
    env = _fresh(r1_start, tmp_path, monkeypatch, landed=True)
    before = env.snapshot()
    env.run_ok()  # batch 2 lands and merges: the landing now holds batch 2's copy
    landed_before = env.query(env.warehouse, "SELECT * FROM exigo_landing.landed_tables")
    rows_before = env.query(env.warehouse, 'SELECT count(*) FROM exigo_landing."Orders"')
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "during_land")
    merged = env.snapshot()
    state = env.run()
    assert state.is_failed() and "during_land" in env.batches()[-1]["error"]
    assert env.snapshot() == merged  # nothing merged from the half-landed batch 3
    assert env.query(env.warehouse, "SELECT * FROM exigo_landing.landed_tables") == landed_before
    assert env.query(env.warehouse, 'SELECT count(*) FROM exigo_landing."Orders"') == rows_before
    assert {r[1] for r in landed_before} == {2}
    assert before != merged
