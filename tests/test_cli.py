"""The command line (exigo_sync.cli): errors that name what to fix before Prefect starts, the
lines a run and `serve` print, and the console's one line per step."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exigo_sync.cli import merged_line, serve_banner
from exigo_sync.console import DETAIL, _HideDetail
from exigo_sync.prefect_api import STARTING
from exigo_sync.settings import REPO_ROOT
from exigo_sync.warehouse.ledger import EntityStats


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EXIGO_SYNC_")}
    base.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "exigo_sync.cli", *args], cwd=cwd, env=base | env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("command", [["run"], ["serve"], ["status"], ["check"], ["docs"], ["demo"]])
def test_every_command_names_a_refused_setting_before_prefect_starts(
    command: list[str], tmp_path: Path
) -> None:
    """EXIGO_SYNC_OVERLAP_MINUTES=-5: one line naming the variable and the fix, exit code 1,
    no Prefect API started, no traceback, nothing written."""
    started = time.monotonic()
    proc = _cli(
        *command, cwd=tmp_path, EXIGO_SYNC_OVERLAP_MINUTES="-5",
        EXIGO_SYNC_PROFILES_DIR=str(tmp_path), PREFECT_HOME=str(tmp_path / "prefect"),
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "EXIGO_SYNC_OVERLAP_MINUTES='-5'" in out and "README: Configuration" in out, out
    assert STARTING not in out and "Traceback" not in out and "pydantic" not in out.lower()
    assert not (tmp_path / "data").exists()
    assert time.monotonic() - started < 60


def test_a_run_with_a_missing_source_file_names_it_before_prefect_starts(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    proc = _cli("run", cwd=tmp_path, EXIGO_SYNC_PROFILES_DIR=str(profiles),
                PREFECT_HOME=str(tmp_path / "prefect"))  # fmt: skip
    out = proc.stdout + proc.stderr
    missing = profiles / "data" / "exigo_source.duckdb"
    assert proc.returncode == 1, out
    assert f"the source file {missing} does not exist: set EXIGO_SYNC_SOURCE_PATH" in out
    assert STARTING not in out
    assert not (profiles / "data").exists()  # no empty warehouse either


def test_a_reconciliation_runs_last_line_gives_its_deletion_counts() -> None:
    out = {
        "batch_id": 7, "window_start": "2026-01-05T10:00:00", "window_kind": "watermark",
        "row_counts": {"Customers": 3, "Orders": 1200}, "completeness": "complete",
        "reconciled": True,
        # As the flow returns them (BatchSummary: each EntityStats' fields).
        "stats": [
            EntityStats("customers", 0, 0, closed=2, rejected=0, ties=0, reopened=1,
                        live_keys=300).__dict__,
            EntityStats("orders", 0, 0, closed=0, rejected=0, ties=0, live_keys=900).__dict__,
            EntityStats("order_statuses", 0, 0, closed=0, rejected=0, ties=0).__dict__,
        ],
    }  # fmt: skip
    line = merged_line(out)
    assert line.startswith("batch 7 merged: window from 2026-01-05T10:00:00 (watermark), 1,203")
    assert line.endswith(
        "reconciliation: customers 2 deleted, 1 reopened; orders 0 deleted, 0 reopened"
    )
    assert "reconciliation" not in merged_line(out | {"reconciled": False})
    full = merged_line(out | {"window_kind": "full", "window_start": "1753-01-01T00:00:00"})
    assert full.startswith("batch 7 merged: full load, 1,203 queue rows") and "1753" not in full


def test_serve_prints_its_ui_and_a_deployment_run_hint_that_reaches_it() -> None:
    lines = serve_banner("http://127.0.0.1:4567/api", ["exigo-sync-local", "exigo-sync-r"])
    assert "Prefect UI: http://127.0.0.1:4567" in lines
    assert (
        "run one now: PREFECT_API_URL=http://127.0.0.1:4567/api prefect deployment run "
        "'exigo-sync/exigo-sync-local'" in lines
    )


def test_the_console_hides_detail_and_completed_task_lines_unless_verbose() -> None:
    def record(
        name: str, msg: str, level: int = logging.INFO, **extra: object
    ) -> logging.LogRecord:
        rec = logging.LogRecord(name, level, __file__, 1, msg, None, None)
        rec.__dict__.update(extra)
        return rec

    quiet, verbose = _HideDetail(verbose=False), _HideDetail(verbose=True)
    node = record("prefect.task_runs", "dbt: 1 of 9 OK", **DETAIL)
    done = record("prefect.task_runs", "Finished in state Completed()")
    failed = record("prefect.task_runs", "Finished in state Failed('x')", logging.ERROR)
    step = record("prefect.task_runs", "batch 3: pinned 13 tables, 914 rows in 0.8 s")
    assert [quiet.filter(r) for r in (node, done, failed, step)] == [False, False, True, True]
    assert all(verbose.filter(r) for r in (node, done, failed, step))
