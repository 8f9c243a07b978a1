"""The README's commands give the same answer from any working directory: the profile's relative
DuckDB paths (the example's data/warehouse.duckdb) name files under the profile's folder, for
exigo-sync and for dbt alike; nothing lands in the directory a command starts in. A run's console
shows one line per step (a line while the private Prefect API starts, no link to it); --verbose
shows dbt's lines. Real `exigo-sync` processes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from exigo_sync.prefect_api import STARTING
from exigo_sync.settings import REPO_ROOT


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    """What the command printed, as a terminal shows it (stderr and stdout interleaved)."""
    proc = subprocess.run(
        [sys.executable, "-m", "exigo_sync.cli", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, f"exigo-sync {' '.join(args)} in {cwd}:\n{proc.stdout[-4000:]}"
    return proc.stdout


@pytest.mark.slow  # in `make test-slow` (four CLI runs from other folders: minutes)
def test_the_readme_commands_answer_the_same_from_any_directory_and_runs_are_quiet(
    sim_template: Path, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles"
    (profiles / "data").mkdir(parents=True)
    (profiles / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    source = profiles / "data" / "exigo_source.duckdb"  # the example's relative default
    shutil.copyfile(sim_template, source)
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXIGO_SYNC_")}
    env.pop("PREFECT_API_URL", None)
    env |= {
        "EXIGO_SYNC_PROFILES_DIR": str(profiles), "PREFECT_HOME": str(tmp_path / "prefect"),
        "EXIGO_SYNC_DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
        "EXIGO_SYNC_DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
        "EXIGO_SYNC_DBT_EXCLUDE": "resource_type:test", "EXIGO_SYNC_DBT_THREADS": "1",
    }  # fmt: skip

    run = _cli(env, here, "run")
    lines = run.strip().splitlines()
    assert lines[0] == STARTING
    assert "batch 1: window full load: everything since 1753-01-01 00:00:00" in run
    assert re.search(r"batch 1: queue.Refresh gave [\d,]+ queue rows \(Customers", run)
    assert re.search(r"batch 1: pinned \d+ tables", run)
    assert re.search(r"batch 1: dbt build: \d+ models ok in", run)
    assert re.search(r"batch 1 merged: [\d,]+ inserted", run)
    assert lines[-1].startswith("batch 1 merged: full load, ")
    assert "dbt: " not in run and "View at" not in run and "Finished in state Completed" in run
    assert len(lines) <= 12, run
    warehouse = profiles / "data" / "warehouse.duckdb"
    assert warehouse.is_file()

    # status, check: the same text wherever they start, every path absolute.
    assert _cli(env, here, "status") == _cli(env, there, "status")
    status = _cli(env, there, "status")
    assert str(source) in status and "merged" in status
    check = _cli(env, here, "check")
    assert check == _cli(env, there, "check")
    assert f"{warehouse} opens" in check.replace("\n", "")

    # --verbose: dbt's node lines and every pinned table too (dbt's log file has them anyway).
    from exigo_sync.simulator import SyncSimulator

    SyncSimulator(source).advance(timedelta(hours=1))
    verbose = _cli(env, there, "run", "--verbose")
    assert "dbt: " in verbose and "pinned queue.Customers" in verbose
    assert "batch 2 merged" in verbose
    assert "OK created" in (tmp_path / "dbt-logs" / "dbt.log").read_text()

    docs = _cli(env, there, "docs")
    assert str(tmp_path / "dbt-target" / "docs" / "index.html") in docs.replace("\n", "")

    # Nothing was created where the commands started.
    assert not any(here.iterdir()) and not any(there.iterdir())
