"""R1: after a crash at any point, the next normal run leaves exactly the tables an uninterrupted
run would. Compared without `batch_id` (and wall-clock load columns): a crashed batch consumes a
ledger id, so "which batch first saw a version" differs by construction, not by content."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import SyncEnv, advance, make_env, table_diff

from exigo_sync.settings import REPO_ROOT


@pytest.fixture(scope="module")
def r1_start(tmp_path_factory: pytest.TempPathFactory, sim_template: Path) -> dict[str, Any]:
    """Batch 1 merged, then 4 hours of activity: the state every crash scenario starts from,
    and the tables an uninterrupted batch 2 leaves (the expected result)."""
    mp = pytest.MonkeyPatch()
    try:
        root = tmp_path_factory.mktemp("r1")
        start = make_env(root / "start", sim_template, mp)
        start.run_ok()
        advance(start, 4)
        baseline = make_env(root / "baseline", start.source, mp)
        _copy(start, baseline)
        baseline.run_ok()
        return {"start": start, "expected": baseline.snapshot()}
    finally:
        mp.undo()


def _copy(src: SyncEnv, dst: SyncEnv) -> None:
    import shutil

    shutil.copyfile(src.source, dst.source)
    shutil.copyfile(src.warehouse, dst.warehouse)


def _fresh(r1_start: dict[str, Any], tmp_path: Path, mp: pytest.MonkeyPatch) -> SyncEnv:
    env = make_env(tmp_path / "env", r1_start["start"].source, mp)
    _copy(r1_start["start"], env)
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


def test_r1_hard_crash_after_dbt_recovers_and_takes_over_dead_lock(
    r1_start: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies (os._exit) after dbt merged but before the ledger update: no except or
    finally runs, so the batch stays `refreshed` and the lock row names a dead pid."""
    env = _fresh(r1_start, tmp_path, monkeypatch)
    child_env = {
        **os.environ,
        "EXIGO_SYNC_FAULT": "after_dbt",
        "EXIGO_SYNC_FAULT_MODE": "exit",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # its own ephemeral API
    }
    child_env.pop("PREFECT_API_URL", None)
    log = tmp_path / "child.log"
    # Its own session: the child's ephemeral Prefect server outlives an os._exit and is ended
    # with the group below; output goes to a file because that server would hold a pipe open.
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exigo_sync.cli", "run"],
            env=child_env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            returncode = proc.wait(timeout=240)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    assert returncode == 70, log.read_text()[-3000:]
    b = env.batches()[-1]
    assert (b["batch_id"], b["status"]) == (2, "refreshed")
    (lock_rows,) = env.query(env.warehouse, "SELECT count(*) FROM exigo_sync.run_lock")[0]
    assert lock_rows == 1

    env.run_ok()
    batches = env.batches()
    assert batches[1]["status"] == "failed" and batches[1]["error"].startswith("abandoned")
    assert (batches[2]["batch_id"], batches[2]["status"]) == (3, "merged")
    assert not table_diff(env.snapshot(), r1_start["expected"])
