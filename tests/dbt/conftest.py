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


@pytest.fixture
def merged_env(tmp_path: Path, two_batch_template: Path) -> DbtEnv:
    """A private copy of the two-batch warehouse and source (`two_batch_template`, built once per
    test process: tests/conftest.py)."""
    return DbtEnv.copy_of(two_batch_template, tmp_path)
