"""W3 with real flow runs: a `since` that cannot be parsed or lies in the future is refused before
anything is opened; one after the watermark (which only the ledger knows) before the source is
touched, naming the watermark, unless the operator allows the gap (later runs then resume from
W1: W2).

W3 is split by one line only: what needs a flow run is here; parse_since and compute_window on
their own are tests/test_window.py. (The end-to-end walk through batches, test_flow_end_to_end.py,
also meets a refusal after the watermark on its way.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

import exigo_sync.topology
import exigo_sync.warehouse.duckdb_engine
from tests.flow.helpers import OVERLAP, SyncEnv, advance


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


def test_w3_w2_allow_gap_accepts_since_after_watermark(
    merged_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = merged_env  # batch 1 merged
    b1 = env.batches()[0]
    assert b1["status"] == "merged"
    watermark, refreshed = b1["resume_at"], b1["refresh_started_at"]
    advance(env, 2)
    since = watermark + timedelta(minutes=30)  # after the watermark, before the source clock
    assert since < env.sim.now()

    # W3: refused without allow_gap, naming the watermark; no batch, no queue.Refresh.
    ledger, calls, last = env.batches(), env.refresh_calls(), env.sim.last_refresh_time()
    state = env.run(since=since.isoformat())
    assert state.is_failed()
    message = str(state.message)
    assert "after the watermark" in message and watermark.isoformat() in message, message
    assert env.batches() == ledger
    assert env.refresh_calls() == calls and env.sim.last_refresh_time() == last == refreshed

    # With allow_gap the operator's `since` is the explicit start of a merged batch (W2).
    out = env.run_ok(since=since.isoformat(), allow_gap=True)
    b2 = env.batches()[1]
    assert (b2["status"], b2["window_kind"]) == ("merged", "gap")
    assert b2["requested_start"] == since and out["window_kind"] == "gap"
    assert b2["refresh_started_at"] == refreshed + timedelta(hours=2)

    # The next normal run resumes from that batch's watermark minus the overlap (W2 -> W1).
    advance(env, 1)
    env.run_ok()
    b3 = env.batches()[2]
    assert (b3["status"], b3["window_kind"]) == ("merged", "watermark")
    # W1: the earlier of b2's refresh start and the latest stamp its snapshot held.
    assert b2["resume_at"] <= b2["refresh_started_at"]
    assert b3["requested_start"] == b2["resume_at"] - OVERLAP
    log = env.query(env.source, "SELECT RequestedStart FROM sim.RefreshLog ORDER BY CalledAt")
    assert [r[0] for r in log] == [b1["requested_start"], since, b3["requested_start"]]


def test_w3_negative_overlap_refused_as_parameter_flag_and_setting(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overlap shapes the window as `since` does: a negative one would start after the
    watermark. Refused alike as the deployment parameter, the CLI flag and the setting, before
    anything is opened, naming where it came from."""
    from typer.testing import CliRunner

    from exigo_sync.cli import app

    sync_env.source.unlink()
    _forbid_connections(monkeypatch)
    state = sync_env.run(overlap_minutes=-60)
    assert state.is_failed()
    assert "overlap_minutes=-60" in str(state.message) and "--overlap-minutes" in str(state.message)
    flag = CliRunner().invoke(app, ["run", "--overlap-minutes", "-60"])
    assert flag.exit_code == 1 and "overlap_minutes=-60" in flag.output, flag.output
    monkeypatch.setenv("EXIGO_SYNC_OVERLAP_MINUTES", "-5")
    setting = CliRunner().invoke(app, ["run"])
    assert setting.exit_code == 1 and "EXIGO_SYNC_OVERLAP_MINUTES" in setting.output, setting.output
    assert not sync_env.source.exists() and not sync_env.warehouse.exists()
