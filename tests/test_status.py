"""`exigo-sync status` after a run was killed outright (R1): the lock holder is shown dead with
the reason, its in-flight batch abandoned, and the operator is told there is nothing to do; a
live holder is shown alive. Real DuckDB warehouse files, the real ledger statements."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from exigo_sync.processes import host_identity, process_start_marker
from exigo_sync.settings import REPO_ROOT, Settings
from exigo_sync.status import render_status
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.ledger import Ledger, utcnow


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    monkeypatch.setenv("EXIGO_SYNC_PROFILES_DIR", str(profiles))
    monkeypatch.setenv("EXIGO_SYNC_TARGET", "duckdb")
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_PATH", str(tmp_path / "missing-source.duckdb"))
    monkeypatch.setenv("EXIGO_SYNC_WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    return tmp_path / "warehouse.duckdb"


def _plant(pid: int, marker: str | None) -> None:
    s = Settings()
    topology = s.topology_for()
    now = utcnow()
    with Ledger.open(topology.warehouse) as led:
        con = led.con
        con.execute(q.INSERT_BATCH, [4, "run-4", "duckdb", "watermark", now, now, 0])
        con.execute(
            q.INSERT_LOCK,
            [topology.lock_name(), "t", "run-4", socket.gethostname(), host_identity(), pid,
             marker, now, now],
        )  # fmt: skip


def _status() -> str:
    console = Console(record=True, width=200)
    render_status(console, target=None, last=5)
    return console.export_text()


def test_r1_status_shows_a_dead_holder_and_its_abandoned_batch(warehouse: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _plant(dead.pid, None)
    text = _status()
    assert "held by a dead run" in text and f"pid {dead.pid} is gone" in text
    assert "takes it over by itself (nothing to do)" in text
    assert "refreshing: run gone, abandoned" in text
    assert "source clock now: unknown" in text  # the source being down does not stop status


def test_status_shows_a_live_holder_alive(warehouse: Path) -> None:
    parent = os.getppid()
    _plant(parent, process_start_marker(parent))
    text = _status()
    assert "(alive)" in text and "abandoned" not in text
