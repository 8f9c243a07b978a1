"""End-to-end batches on the simulator: the ledger (L1/L2) and the window (W1/W2, and a W3
refusal on the way; the W3 family is test_flow_window_refusals.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from exigo_sync.catalog import QUEUE_TABLES, REPLICATED_ENTITIES
from exigo_sync.warehouse.ledger_sql import ROW_COLUMNS, STATS
from exigo_sync.window import FULL_LOAD_START
from tests.flow.helpers import CLOCK_START, SyncEnv, advance, prefect_logs_and_artifacts


def test_l1_l2_w1_w2_w3_batches_ledger_and_watermark(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sync_env
    monkeypatch.setenv("EXIGO_SYNC_DBT_THREADS", "2")  # as shipped (tests/conftest.py: 1)
    # A batch of at least half the source's rows (the full load, the replay from its start)
    # runs dbt on one thread; the others on the profile's two.
    source_rows = sum(len(env.sim.current_rows(t)) for t in QUEUE_TABLES)
    monkeypatch.setenv("EXIGO_SYNC_DUCKDB_ONE_THREAD_ROWS", str(source_rows // 2))
    # Batch 1: no merged batch yet -> a full initial load (W1). It runs the default `dbt build`
    # (models + the dbt project's contract tests), as production does.
    with monkeypatch.context() as m:
        m.delenv("EXIGO_SYNC_DBT_EXCLUDE")
        out1 = env.run_ok()
    b1 = env.batches()[0]
    assert b1["status"] == "merged" and b1["window_kind"] == "full"
    assert b1["requested_start"] == FULL_LOAD_START
    assert out1["completeness"].startswith("complete")
    assert b1["refresh_started_at"] == CLOCK_START
    assert b1["flow_run_id"] and b1["dbt_invocation_id"] and b1["error"] is None
    assert b1["started_at"] <= b1["finished_at"]
    for table in QUEUE_TABLES:
        assert b1[ROW_COLUMNS[table]] == out1["row_counts"][table]
    assert b1[ROW_COLUMNS["Customers"]] > 0
    stats1 = {s["entity"]: s for s in out1["stats"]}
    assert set(stats1) == {e.name for e in REPLICATED_ENTITIES}
    assert stats1["customers"]["inserted"] > 0
    (customers_current,) = env.query(
        env.warehouse, "SELECT count(*) FROM exigo_current.customers_current"
    )[0]
    assert customers_current == stats1["customers"]["inserted"]
    # W1 on the full population: every customer of the source, not only the recent ones.
    assert customers_current == len(env.sim.current_rows("Customers"))
    assert sum(out1["row_counts"].values()) >= source_rows // 2
    assert _dbt_threads(env) == 1

    # Batch 2: resumes from the watermark minus the overlap (W1).
    advance(env, 3)
    out2 = env.run_ok()
    b2 = env.batches()[1]
    assert (b2["status"], b2["window_kind"]) == ("merged", "watermark")
    # W1: the earlier of b1's refresh start and the latest stamp its snapshot held.
    assert b1["resume_at"] <= b1["refresh_started_at"]
    assert b2["requested_start"] == b1["resume_at"] - timedelta(minutes=10)
    assert b2["refresh_started_at"] == CLOCK_START + timedelta(hours=3)
    assert sum(s["changed"] + s["inserted"] for s in out2["stats"]) > 0
    assert sum(out2["row_counts"].values()) < source_rows // 2
    assert _dbt_threads(env) == 2
    # The child wrote dbt's results; dbt wrote no manifest for the batch (--no-write-json).
    assert not (env.root / "dbt-target" / "manifest.json").exists()

    # Batch 3: an operator replays from the start (W2); re-delivered versions add nothing (H4).
    before = env.snapshot()
    out3 = env.run_ok(since=b1["requested_start"].isoformat())
    b3 = env.batches()[2]
    # A replay from the full load's start is a full load again (W2), adding nothing (H4).
    assert (b3["status"], b3["window_kind"]) == ("merged", "full")
    assert b3["requested_start"] == b1["requested_start"]
    assert all(s["inserted"] == s["changed"] == s["closed"] == 0 for s in out3["stats"])
    assert env.snapshot() == before

    # W3: a `since` after the watermark would skip changes: refused before queue.Refresh.
    advance(env, 1)
    calls = env.refresh_calls()
    state = env.run(since=(b3["resume_at"] + timedelta(minutes=30)).isoformat())
    assert state.is_failed() and "after the watermark" in str(state.message)
    assert env.refresh_calls() == calls and len(env.batches()) == 3

    # Batch 4: back to the watermark of the replay batch (W2: later runs resume from W1).
    env.run_ok()
    b4 = env.batches()[3]
    assert b4["window_kind"] == "watermark"
    assert b4["requested_start"] == b3["resume_at"] - timedelta(minutes=10)

    # L1: per-entity statistics for every merged batch; the report artifact names the window.
    rows = env.query(env.warehouse, f"SELECT batch_id, count(*) FROM {STATS} GROUP BY 1 ORDER BY 1")
    assert rows == [(1, 6), (2, 6), (3, 6), (4, 6)]
    text = prefect_logs_and_artifacts()
    assert "exigo-sync batch 1" in text and "| customers |" in text


def _dbt_threads(env: SyncEnv) -> int:
    """How many dbt threads ran the last batch's nodes (its run_results.json; the on-run-start
    hook runs in dbt's main thread)."""
    results = json.loads((env.root / "dbt-target" / "run_results.json").read_text())
    return len({r["thread_id"] for r in results["results"] if r["unique_id"].startswith("model.")})
