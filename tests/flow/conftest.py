"""Shared fixtures for the flow tests.

ONE Prefect test harness for the whole session (a flow on a fresh ephemeral API takes ~10 s to
start). Every test gets its own simulator and warehouse DuckDB files in a tmp dir, pointed at by
the same env vars an operator would set; the dbt profile is the repository's example profile.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.flow.cli_processes import (
    kill_started,
    migrated_prefect_database,
    seed_prefect_homes_with,
)
from tests.flow.helpers import (
    CLOCK_START,
    CUSTOMERS,
    SyncEnv,
    advance,
    copy_files,
    env_at,
    make_env,
)
from tests.run_folder import built_once


@pytest.fixture(scope="session", autouse=True)
def _flows_report_to_the_test_api(prefect_api: str) -> str:
    return prefect_api


@pytest.fixture(scope="session", autouse=True)
def _cli_runs_find_a_migrated_prefect_database(tmp_path_factory: pytest.TempPathFactory) -> None:
    seed_prefect_homes_with(built_once(tmp_path_factory, "prefect_home", migrated_prefect_database))


@pytest.fixture(autouse=True)
def _no_cli_run_left_behind() -> Iterator[None]:
    yield
    kill_started()


@pytest.fixture(scope="session")
def sim_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly created simulator file, copied by every test (creation is the slow part), made
    once per test run."""
    from exigo_sync.simulator import SyncSimulator

    def create(folder: Path) -> Path:
        path = folder / "exigo_source.duckdb"
        folder.mkdir(parents=True)
        SyncSimulator.create(path, seed=42, customers=CUSTOMERS, clock_start=CLOCK_START)
        return path

    return built_once(tmp_path_factory, "simulator", create)


@pytest.fixture
def sync_env(tmp_path: Path, sim_template: Path, monkeypatch: pytest.MonkeyPatch) -> SyncEnv:
    return make_env(tmp_path / "env", sim_template, monkeypatch)


@pytest.fixture
def landed_env_factory(tmp_path: Path, sim_template: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The landed topology's env (a DuckDB source streamed across), made on demand: it resets
    the environment variables a `sync_env` set."""
    return lambda: make_env(tmp_path / "landed", sim_template, monkeypatch, landed=True)


@pytest.fixture(scope="session")
def first_batch(tmp_path_factory: pytest.TempPathFactory, sim_template: Path) -> SyncEnv:
    """Batch 1, the full load, merged with make_env's settings (co-located): built once per
    test run, copied by the tests that start after it (`merged_env`, `r1_start`)."""

    def merge_the_full_load(folder: Path) -> Path:
        mp = pytest.MonkeyPatch()
        try:
            env = make_env(folder / "env", sim_template, mp)
            env.run_ok()
            return env.root
        finally:
            mp.undo()

    return env_at(built_once(tmp_path_factory, "first_batch", merge_the_full_load))


@pytest.fixture
def merged_env(first_batch: SyncEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SyncEnv:
    """A `sync_env` whose batch 1 (the full load) has merged: the same files the test's own
    first `run_ok()` would leave (the simulator is deterministic), without the batch's time."""
    env = make_env(tmp_path / "env", first_batch.source, monkeypatch)
    copy_files(first_batch, env)
    return env


@pytest.fixture(scope="session")
def r1_start(tmp_path_factory: pytest.TempPathFactory, first_batch: SyncEnv) -> dict[str, Any]:
    """Batch 1 merged, then 4 hours of activity: the state every crash scenario starts from,
    and the tables an uninterrupted batch 2 leaves (the expected result, R1). Built once per
    test run."""

    def merge_batch_two(folder: Path) -> Path:
        mp = pytest.MonkeyPatch()
        try:
            start = make_env(folder / "start", first_batch.source, mp)
            copy_files(first_batch, start)
            advance(start, 4)
            baseline = make_env(folder / "baseline", start.source, mp)
            copy_files(start, baseline)
            baseline.run_ok()
            (folder / "expected.pickle").write_bytes(pickle.dumps(baseline.snapshot()))
            return folder
        finally:
            mp.undo()

    folder = built_once(tmp_path_factory, "r1_start", merge_batch_two)
    expected = pickle.loads((folder / "expected.pickle").read_bytes())
    return {"start": env_at(folder / "start"), "expected": expected}


@pytest.fixture
def chain(r1_start: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SyncEnv:
    env = make_env(tmp_path / "env", r1_start["start"].source, monkeypatch)
    copy_files(r1_start["start"], env)
    # Long enough for a run to start behind a live holder; a run stuck behind something a dead
    # run left would fail with LockTimeout instead of merging.
    monkeypatch.setenv("EXIGO_SYNC_LOCK_TIMEOUT_SECONDS", "45")
    return env
