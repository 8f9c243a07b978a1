from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.dbt.helpers import DbtEnv, create_source


@pytest.fixture
def dbt_env(tmp_path: Path) -> DbtEnv:
    """A dbt environment over a hand-made, empty source file (queue + dbo schemas)."""
    env = DbtEnv(tmp_path)
    create_source(env.source)
    return env


@pytest.fixture
def t0() -> datetime:
    return datetime(2026, 1, 5, 8, 0, 0)


@pytest.fixture(scope="session")
def two_batch_template(tmp_path_factory) -> Path:
    """Warehouse + source files after batches 1 and 2 of tests.dbt.scenario, built once."""
    from datetime import timedelta

    from tests.dbt.helpers import failures
    from tests.dbt.scenario import CONFIRM_PAYMENT_DELETION, T0, load_batch_one, load_batch_two

    env = DbtEnv(tmp_path_factory.mktemp("two_batches"))
    create_source(env.source)
    load_batch_one(env)
    res = env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    load_batch_two(env)
    res = env.fast_build(2, T0 + timedelta(hours=3), extra_vars=CONFIRM_PAYMENT_DELETION)
    assert res.success, failures(res)
    return env.tmp


@pytest.fixture
def merged_env(tmp_path: Path, two_batch_template: Path) -> DbtEnv:
    """A private copy of the two-batch warehouse and source."""
    return DbtEnv.copy_of(two_batch_template, tmp_path)
