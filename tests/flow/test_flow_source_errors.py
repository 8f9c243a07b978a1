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
    merged_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = merged_env  # batch 1 merged
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


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unreachable_sqlserver_source(sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch) -> SyncEnv:
    """The example profile's `source` output (a SQL Server sync database) on a closed local
    port, through the real pyodbc + FreeTDS; the warehouse a DuckDB file (landed topology)."""
    import pyodbc

    if "FreeTDS" not in pyodbc.drivers():
        pytest.skip("FreeTDS ODBC driver (tdsodbc) not installed")
    for key, value in {
        "EXIGO_SYNC_TARGET": "duckdb_local", "EXIGO_SYNC_SOURCE_TARGET": "source",
        "EXIGO_SYNC_SOURCE_DRIVER": "FreeTDS", "EXIGO_SYNC_SOURCE_SERVER": "127.0.0.1",
        "EXIGO_SYNC_SOURCE_PORT": str(_closed_port()), "EXIGO_SYNC_SOURCE_USER": "reader",
        "EXIGO_SYNC_SOURCE_PASSWORD": "Not-A-Real-Secret-42", "EXIGO_SYNC_REFRESH_RETRIES": "0",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    return sync_env


def test_b5_an_unreachable_sqlserver_source_fails_with_a_hint_and_a_ledger_row(
    unreachable_sqlserver_source: SyncEnv,
) -> None:
    """The window reads the source's clock before the batch has a row: the failure is still
    recorded (a failed batch with the error and where the source is configured), the
    watermark does not move, and the message says how to test the connection."""
    env = unreachable_sqlserver_source
    with Ledger.open(Settings().topology_for().warehouse) as led:  # an existing warehouse
        assert led.watermark() is None
    state = env.run()
    assert state.is_failed()
    message = str(state.message)
    profile = env.profiles / "profiles.yml"
    assert "batch 1 failed at step 'window'" in message and "127.0.0.1" in message
    assert f"source: output 'source' of {profile}; `exigo-sync check` tests" in message
    assert "Not-A-Real-Secret-42" not in message
    (b,) = env.batches()
    assert b["status"] == "failed" and "`exigo-sync check`" in b["error"]
    assert b["window_kind"] is None and b["refresh_started_at"] is None
    with Ledger.open(Settings().topology_for().warehouse, read_only=True) as led:
        assert led.watermark() is None


def test_a_first_run_failing_on_its_source_creates_no_warehouse(
    unreachable_sqlserver_source: SyncEnv,
) -> None:
    env = unreachable_sqlserver_source
    assert not env.warehouse.exists()
    state = env.run()
    assert state.is_failed() and "failed at step 'source'" in str(state.message)
    assert not env.warehouse.exists() and not env.warehouse.parent.joinpath("data").exists()
