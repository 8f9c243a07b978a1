"""`exigo-sync status` while a DuckDB batch holds the warehouse file: it answers from the batch's
live status file and the analytics copy (which batch runs, its step, who holds the lock) without
opening the warehouse; it never makes the batch fail; after the batch (or its death) it reads
the warehouse again. Real `exigo-sync run` processes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from rich.console import Console

from exigo_sync.status import render_status
from exigo_sync.warehouse import live_status
from tests.flow.cli_processes import assert_all_gone, signal_run, start_cli
from tests.flow.helpers import SyncEnv, advance


def _status() -> str:
    console = Console(record=True, width=250)
    render_status(console, target=None, last=5)
    return console.export_text()


def test_status_answers_during_a_batch_from_the_live_file_and_the_copy_and_never_fails_it(
    merged_env: SyncEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, home = merged_env, tmp_path / "prefect-home"  # batch 1 merged; its analytics copy too
    advance(env, 2)

    # Batch 2 paused inside dbt (a current-state model's pre-hook): dbt holds the file.
    paused, marker = start_cli(tmp_path, "paused", prefect_home=home, fault="before_current")
    paused.wait_for(marker)
    text = _status()
    assert "batch 2 running: step dbt since" in text
    assert f"pid {paused.pid}" in text and "lock exigo-sync-" in text
    assert "the ledger below is the analytics copy's" in text
    assert "│ 1 " in text and "│ 2 " not in text  # the copy: the last merged state
    assert "not read while a batch runs" in text
    live = live_status.read(Path(f"{env.warehouse}{live_status.SUFFIX}"))
    assert live is not None and (live.batch_id, live.step, live.pid) == (2, "dbt", paused.pid)

    # Killed outright: the file still says running, but its pid is gone: status reads the
    # warehouse and shows the abandoned batch and the dead holder.
    assert_all_gone(signal_run(paused, signal.SIGKILL, group=True))
    text = _status()
    assert "refreshed: run gone, abandoned" in text and "held by a dead run" in text

    # A whole batch with status asked all along: it merges, and status always answers.
    monkeypatch.setenv("EXIGO_SYNC_LOCK_TIMEOUT_SECONDS", "30")
    run, _ = start_cli(tmp_path, "watched", prefect_home=home)
    answers, running_seen = 0, 0
    while run.proc.poll() is None:
        text = _status()
        answers += 1
        running_seen += "running: step" in text
        time.sleep(0.3)
    assert run.wait(timeout=10) == 0, run.output()[-3000:]
    assert answers > 10 and running_seen > 0, (answers, running_seen)
    assert "batch 3 merged" in run.output()

    text = _status()
    assert "running: step" not in text and "lock: free" in text
    assert [b["status"] for b in env.batches()] == ["merged", "failed", "merged"]
    final = live_status.read(Path(f"{env.warehouse}{live_status.SUFFIX}"))
    assert final is not None and (final.state, final.batch_id) == ("merged", 3)
