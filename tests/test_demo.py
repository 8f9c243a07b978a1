"""`exigo-sync demo` as a new user meets it (a real process, real DuckDB files): it says which
files it replaces, shows a full load as "full load", uses one vocabulary in its two tables, and
every command it suggests runs as printed, from a shell whose PATH has neither `exigo-sync` (a
venv not activated) nor DuckDB's own shell. Its flow runs send their private Prefect API no
heartbeats: nobody could read them, and each run waited up to 1 s at its end for Prefect's
heartbeat thread."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb


def test_the_demo_names_what_it_replaces_says_full_load_and_prints_runnable_commands(
    tmp_path: Path,
) -> None:
    data = tmp_path / "demo"
    data.mkdir()
    duckdb.connect(str(data / "warehouse.duckdb")).close()  # a previous demo's warehouse
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXIGO_SYNC_")}
    env.pop("PREFECT_API_URL", None)
    env |= {"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "exigo_sync.cli", "demo", "--customers", "30", "--cycles", "1",
         "--hours", "1", "--data-dir", str(data)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert f"replacing the previous demo's files: {data / 'warehouse.duckdb'}" in out

    batches = out[out.index("batches") :]
    header = next(line for line in batches.splitlines() if "window from" in line)
    assert "inserted" in header and "deleted" in header and "closed" not in header
    first = next(line for line in batches.splitlines() if re.match(r"\W*1\W", line))
    assert "full load" in first and "01-01 00:00" not in first
    lines = out.splitlines()
    entity_header = next(line for line in lines if "queue rows" in line and "entity" in line)
    assert " new " not in entity_header and "inserted" in entity_header

    # The suggested commands, run as printed from the same PATH-less shell.
    last = " ".join(out[out.index("warehouse kept at") :].split())
    read = re.search(r"analysts read the copy \S+: (.+?); the batches: ", last).group(1)
    status = last.split("; the batches: ", 1)[1]
    assert "duckdb -readonly" not in read and shlex.split(status)[1] != "exigo-sync"
    for command in (read, status):
        ran = subprocess.run(
            command, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert ran.returncode == 0, f"{command}\n{ran.stdout}{ran.stderr}"
        assert "merged" in ran.stdout, ran.stdout

    # The private API's own record of the demo's flow runs (its database, in PREFECT_HOME).
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as api_db:
        events = dict(api_db.execute("select event, count(*) from events group by event"))
    assert events.get("prefect.flow-run.Completed", 0) >= 2, events
    assert "prefect.flow-run.heartbeat" not in events, events
