"""R1: after a crash at any point, the next normal run leaves exactly the tables an uninterrupted
run would. Compared without `batch_id` (and wall-clock load columns): a crashed batch consumes a
ledger id, so "which batch first saw a version" differs by construction, not by content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flow_helpers import SyncEnv, copy_files, make_env, table_diff


def _fresh(r1_start: dict[str, Any], tmp_path: Path, mp: pytest.MonkeyPatch) -> SyncEnv:
    env = make_env(tmp_path / "env", r1_start["start"].source, mp)
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
    "point", ["before_refresh", "after_refresh", "before_current", "after_dbt"]
)
def test_r1_crash_recovers(
    point: str, r1_start: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _fresh(r1_start, tmp_path, monkeypatch)
    _crash_then_recover(env, point, monkeypatch)
    assert not table_diff(env.snapshot(), r1_start["expected"])
