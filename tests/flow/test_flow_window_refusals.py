"""W3: a `since` that cannot be parsed or lies in the future is refused before anything is
opened. (After the watermark, which only the ledger knows, is refused before the source is
touched: see test_flow_end_to_end; allow_gap: test_window_and_profiles.)"""

from __future__ import annotations

import pytest

import exigo_sync.topology
import exigo_sync.warehouse.duckdb_engine
from tests.flow.helpers import SyncEnv


def _forbid_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("a connection was opened")

    monkeypatch.setattr(exigo_sync.warehouse.duckdb_engine, "open_duckdb", boom)
    monkeypatch.setattr(exigo_sync.topology.Topology, "source_client", boom)


@pytest.mark.parametrize(
    ("since", "reason"),
    [("yesterday-ish", "cannot parse date"), ("2999-01-01", "lies in the future")],
    ids=["unparseable", "future"],
)
def test_w3_bad_since_refused_before_any_connection(
    since: str, reason: str, sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.source.unlink()  # nothing may create it either
    _forbid_connections(monkeypatch)
    state = sync_env.run(since=since)
    assert state.is_failed() and reason in str(state.message)
    assert not sync_env.source.exists() and not sync_env.warehouse.exists()
