"""`exigo-sync serve` with no Prefect server configured: it starts a local one (with the
scheduler), its schedule starts a batch by itself, and when the whole serve process group is
killed outright in the middle of that batch, nothing is left running and the next
`exigo-sync run` (same PREFECT_HOME) merges what an uninterrupted batch would (R1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from exigo_sync.settings import REPO_ROOT
from tests.flow.cli_processes import (
    CliRun,
    assert_all_gone,
    descendants,
    finish_and_compare,
    signal_run,
)
from tests.flow.helpers import SyncEnv


def test_r1_serve_schedules_a_batch_and_a_sigkilled_serve_leaves_nothing_behind(
    chain: SyncEnv, r1_start: dict[str, Any], tmp_path: Path
) -> None:
    env, home = chain, tmp_path / "prefect-home"
    marker = tmp_path / "serve.reached"
    serve_env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "EXIGO_SYNC_SCHEDULE_CRON": "* * * * *",  # every minute: the next one starts a batch
        "EXIGO_SYNC_RECONCILE_CRON": "0 0 1 1 *",
        "EXIGO_SYNC_FAULT": "after_refresh",
        "EXIGO_SYNC_FAULT_MODE": "pause",
        "EXIGO_SYNC_FAULT_MARKER": str(marker),
    }
    serve_env.pop("PREFECT_API_URL", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exigo_sync.cli", "serve"],
            env=serve_env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    serve = CliRun(proc, log)
    serve.wait_for(marker, timeout=240)  # the schedule started a batch; it paused mid-batch
    assert env.batches()[-1]["status"] == "refreshed"

    family = signal_run(serve, signal.SIGKILL, group=True) | descendants(serve.pid)
    assert_all_gone(family)

    batches = finish_and_compare(env, tmp_path, home, r1_start["expected"])
    assert [b["status"] for b in batches] == ["merged", "failed", "merged"]
    assert batches[1]["error"].startswith("abandoned")
