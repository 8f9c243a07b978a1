"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from exigo_sync.dbt_runner import preloaded_modules
from exigo_sync.processes import ForkServer, stop_child
from tests import parse_cache
from tests.run_folder import built_once, run_folder

# The example profile runs dbt on two threads on DuckDB. Here pytest-xdist already runs two test
# files at once on a two-core machine, and a second dbt thread in every build only adds
# contention (the whole suite took 19 min instead of 16). The tests that prove the shipped
# setting set it back to 2: the T1 oracle, the SIGKILL chain, the end-to-end flow and the H6
# full build.
os.environ.setdefault("EXIGO_SYNC_DBT_THREADS", "1")

# The CLI runs the tests start are stopped with Ctrl-C as a terminal's foreground job would be.
# A suite started in the background (`make test &`, nohup) inherits SIGINT ignored, Python keeps
# it so, and every process the tests start would inherit it too and never see its Ctrl-C.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _dbt_parses_shared_by_the_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    parse_cache.share(run_folder(tmp_path_factory) / "dbt-parses")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """ONE Prefect test API per test process (a fresh one takes ~10 s to start). Its flow
    runs send no heartbeats, as a CLI run's (exigo_sync.prefect_api): nothing here watches
    for zombie runs, and Prefect's heartbeat thread holds each flow run's end up to 1 s.
    `serve`'s flow runs in tests/flow/test_serve.py send them."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def dbt_fork_server() -> Iterator[ForkServer]:
    """A fork server of the test's own that imported dbt, as a run starts one
    (exigo_sync.dbt_runner), for a dbt process forked as a batch's is."""
    server = ForkServer.start(preloaded_modules("duckdb"))
    yield server
    server.close()
    stop_child(server.process, grace_seconds=2)


@pytest.fixture(scope="session")
def two_batch_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Warehouse + source files after batches 1 and 2 of tests.dbt.scenario, built once per test
    run and copied by the dbt tests (`merged_env`) and the docs-site test."""
    from tests.dbt.scenario import two_batch_warehouse

    return built_once(tmp_path_factory, "two_batches", two_batch_warehouse)


# The longest files (measured with `--durations`; each runs many dbt builds or flow batches),
# scheduled first: with `--dist loadfile --no-loadscope-reorder` (the Makefile) a worker takes
# whole files in collection order. xdist's default order, most tests first, left the long
# one-test flow files for last, and one worker busy for minutes while the other had nothing.
LONGEST_FILES_FIRST = (
    "tests/dbt/test_merge_lifecycle.py",
    "tests/flow/test_flow_recovery.py",
    "tests/dbt/test_bad_input.py",
    "tests/dbt/test_marts.py",
    "tests/sqlserver/test_render_models.py",
    "tests/flow/test_analytics_copy_batches.py",
    "tests/flow/test_flow_deletion_guard.py",
    "tests/dbt/test_t1_oracle.py",
    "tests/flow/test_r3_rival_consumer.py",
    "tests/flow/test_flow_concurrency.py",
    "tests/dbt/test_s2_policy.py",
    "tests/flow/test_w1_data_clock.py",
    "tests/flow/test_status_during_batch.py",
    "tests/flow/test_flow_end_to_end.py",
    "tests/flow/test_serve.py",
    "tests/flow/test_flow_stop.py",
    "tests/test_demo.py",
    "tests/flow/test_flow_watermark_overlap.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
