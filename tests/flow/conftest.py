"""Shared fixtures for the flow tests.

ONE Prefect test harness for the whole session (a flow on a fresh ephemeral API takes ~10 s to
start). Every test gets its own simulator and warehouse DuckDB files in a tmp dir, pointed at by
the same env vars an operator would set; the dbt profile is the repository's example profile.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import CLOCK_START, CUSTOMERS, SyncEnv, make_env


@pytest.fixture(scope="session", autouse=True)
def _flows_report_to_the_test_api(prefect_api: str) -> str:
    return prefect_api


@pytest.fixture(scope="session")
def sim_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly created simulator file, copied by every test (creation is the slow part)."""
    from exigo_sync.simulator import SyncSimulator

    path = tmp_path_factory.mktemp("template") / "exigo_source.duckdb"
    SyncSimulator.create(path, seed=42, customers=CUSTOMERS, clock_start=CLOCK_START)
    return path


@pytest.fixture
def sync_env(tmp_path: Path, sim_template: Path, monkeypatch: pytest.MonkeyPatch) -> SyncEnv:
    return make_env(tmp_path / "env", sim_template, monkeypatch)
