"""Shared simulator fixtures: one small database per session, copied per test (cheap)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from exigo_sync.simulator import ActivityRates, SyncSimulator
from exigo_sync.simulator.rates import PER_HOUR_RATES

CLOCK_START = datetime(2026, 1, 5)
SEED = 7
CUSTOMERS = 300

# Enough of every kind that a few simulated hours show each of them (the physical deletions,
# rare by default, at one of each per hour).
BUSY = ActivityRates(
    decline_fraction=0.15,
    cancel_fraction=0.15,
    customer_purges=0.2,
    order_deletes=0.2,
    account_deletes=0.2,
    site_deletes=0.2,
).scaled(5.0)
# Nothing happens except time-driven order progression, which is pushed beyond any test window.
QUIET = ActivityRates(
    **{name: 0.0 for name in PER_HOUR_RATES},
    accept_after_minutes=(1e6, 1e6),
    print_after_hours=(1e6, 1e6),
    ship_after_hours=(1e6, 1e6),
)


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


def keys(rows: list[dict], *key: str) -> set:
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]] for r in rows}
