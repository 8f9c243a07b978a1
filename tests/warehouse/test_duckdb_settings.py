"""The flow's own DuckDB connections run under the profile output's `settings`, as dbt's do: the
landing's copy of an initial load is bounded by the same memory_limit as dbt's models."""

from __future__ import annotations

from pathlib import Path

import pytest

from exigo_sync.profiles import Target
from exigo_sync.warehouse.connection import connected
from exigo_sync.warehouse.errors import WarehouseError


def test_profile_settings_apply_to_the_flows_connections(tmp_path: Path) -> None:
    settings = {"memory_limit": "300MB", "preserve_insertion_order": False}
    target = Target("duckdb", "duckdb", {"path": str(tmp_path / "w.duckdb"), "settings": settings})
    with connected(target) as con:
        limit, order = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order')"
        ).fetchone()
    assert limit.startswith("286.1 MiB") and order is False


def test_a_setting_duckdb_refuses_names_it_and_the_profile(tmp_path: Path) -> None:
    target = Target(
        "duckdb_local", "duckdb",
        {"path": str(tmp_path / "w.duckdb"), "settings": {"memory_limit": "three gigabytes"}},
    )  # fmt: skip
    refused = r"'duckdb_local'.*memory_limit = 'three gigabytes'"
    with pytest.raises(WarehouseError, match=refused), connected(target):
        pass
