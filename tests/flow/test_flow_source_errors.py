"""B5: transient source errors are retried with backoff, then fail with a clear message; the
ledger records the failure and the watermark does not move."""

from __future__ import annotations

import pytest

from exigo_sync.settings import Settings
from exigo_sync.source import TransientSourceError
from exigo_sync.source.duckdb_client import DuckDbSourceClient
from exigo_sync.warehouse.ledger import Ledger
from tests.flow.helpers import SyncEnv


def test_b5_transient_errors_retried_then_fail_watermark_unchanged(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sync_env
    env.run_ok()
    s = Settings()
    tgt = s.topology_for().warehouse
    with Ledger.open(tgt) as led:
        watermark = led.watermark()
    attempts: list[object] = []

    def unreachable(self: DuckDbSourceClient, start: object) -> None:
        attempts.append(start)
        raise TransientSourceError("source unreachable: connection timed out")

    monkeypatch.setattr(DuckDbSourceClient, "refresh", unreachable)
    state = env.run()
    assert state.is_failed()
    msg = str(state.message)
    assert "batch 2 failed at step 'refresh'" in msg and "source unreachable" in msg
    assert len(attempts) == 1 + Settings().refresh_retries == 3
    assert len(set(attempts)) == 1  # every attempt asks for the same explicit start
    b = env.batches()[-1]
    assert (b["batch_id"], b["status"]) == (2, "failed")
    assert "TransientSourceError" in b["error"] and b["refresh_started_at"] is None
    with Ledger.open(tgt) as led:
        assert led.watermark() == watermark


def test_b5_permanent_source_error_not_retried(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exigo_sync.source import SourceError

    attempts: list[object] = []

    def broken(self: DuckDbSourceClient, start: object) -> None:
        attempts.append(start)
        raise SourceError("queue.Refresh does not exist")

    monkeypatch.setattr(DuckDbSourceClient, "refresh", broken)
    state = sync_env.run()
    assert state.is_failed() and "queue.Refresh does not exist" in str(state.message)
    assert len(attempts) == 1
    assert [b["status"] for b in sync_env.batches()] == ["failed"]
