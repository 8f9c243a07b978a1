"""Shared simulator fixtures: one small database per session, copied per test (cheap)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exigo_sync.simulator import SyncSimulator
from tests.simulator.helpers import CLOCK_START, CUSTOMERS, SEED


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "sync.duckdb"
    SyncSimulator.create(path, seed=SEED, customers=CUSTOMERS, clock_start=CLOCK_START)
    return path


@pytest.fixture
def sim(template_db: Path, tmp_path: Path) -> SyncSimulator:
    """A fresh copy of the session's small simulator database (clock at CLOCK_START, never
    refreshed)."""
    path = tmp_path / "sync.duckdb"
    shutil.copyfile(template_db, path)
    return SyncSimulator(path)
