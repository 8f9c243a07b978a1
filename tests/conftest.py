"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

# The example profile runs dbt on two threads on DuckDB. Here pytest-xdist already runs two test
# files at once on a two-core machine, and a second dbt thread in every build only adds
# contention (the whole suite took 19 min instead of 16). The tests that prove the shipped
# setting set it back to 2: the T1 oracle, the SIGKILL chain, the end-to-end flow and the H6
# full build.
os.environ.setdefault("EXIGO_SYNC_DBT_THREADS", "1")


@pytest.fixture(autouse=True)
def _stop_signals_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """A process inherits an ignored or blocked SIGINT/SIGTERM from the test process that starts
    it: a CLI run started by a later test would then never see its Ctrl-C (the R4 and docs
    `--serve` tests). Put back what a test left changed, and say which test did."""
    stops = (signal.SIGINT, signal.SIGTERM)
    handlers = {s: signal.getsignal(s) for s in stops}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    changed = {s.name for s in stops if signal.getsignal(s) is not handlers[s]}
    now_blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    if changed or now_blocked != blocked:
        for s in stops:
            signal.signal(s, handlers[s])
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        warnings.warn(
            f"{request.node.nodeid} left the test process's stop signals changed "
            f"(handlers: {sorted(changed)}, blocked: {sorted(now_blocked - blocked)}); put back",
            stacklevel=1,
        )


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """ONE Prefect test API per test process (a fresh one takes ~10 s to start)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def two_batch_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Warehouse + source files after batches 1 and 2 of tests.dbt.scenario, built once per test
    process and copied by the dbt tests (`merged_env`) and the docs-site test."""
    from tests.dbt.scenario import two_batch_warehouse

    return two_batch_warehouse(tmp_path_factory.mktemp("two_batches"))


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
