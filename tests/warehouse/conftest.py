"""The engine fixture: the engine-neutral warehouse tests (ledger, lock) run once per engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exigo_sync.profiles import Target
from tests.sqlserver.targets import live_skip_reason
from tests.warehouse.engines import fresh_duckdb, fresh_sqlserver


@pytest.fixture(params=["duckdb", pytest.param("sqlserver", marks=pytest.mark.sqlserver)])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Target]:
    """A fresh warehouse target on each engine: an empty DuckDB file; the SQL Server of
    EXIGO_SYNC_TEST_MSSQL_* with a ledger schema of this test's own (skipped without a server).
    See tests/warehouse/engines.py."""
    if request.param == "duckdb":
        yield fresh_duckdb(tmp_path)
        return
    if reason := live_skip_reason():
        pytest.skip(reason)
    with fresh_sqlserver(monkeypatch) as target:
        yield target
