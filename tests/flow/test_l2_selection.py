"""L2: a batch is merged only when every history and current model of every entity ran and
succeeded. A narrowed dbt selection (`--select`, EXIGO_SYNC_DBT_SELECT, EXIGO_SYNC_DBT_EXCLUDE)
never moves the watermark of an entity it did not merge: the batch is not merged at all, and the
next normal batch covers its window."""

from __future__ import annotations

import pytest

from tests.flow.helpers import SyncEnv, advance, assert_current_equals_source


@pytest.mark.parametrize(
    ("how", "value"),
    [
        ("select", "orders_history+"),
        pytest.param("exclude", "customers_history customers_current", marks=pytest.mark.slow),
    ],
)
def test_l2_narrowed_selection_moves_no_watermark(
    merged_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, how: str, value: str
) -> None:
    env = merged_env  # batch 1 merged
    watermark = env.batches()[-1]["resume_at"]
    advance(env, 2)
    if how == "select":
        state = env.run(dbt_select=value)
    else:
        monkeypatch.setenv("EXIGO_SYNC_DBT_EXCLUDE", f"resource_type:test {value}")
        state = env.run()
        monkeypatch.setenv("EXIGO_SYNC_DBT_EXCLUDE", "resource_type:test")
    assert state.is_failed()
    message = str(state.message)
    assert "left out" in message and "customers_history" in message and "(L2)" in message
    batches = env.batches()
    assert batches[-1]["status"] == "failed"
    assert [b for b in batches if b["status"] == "merged"][-1]["resume_at"] == watermark
    # The next normal batch redoes the window: nothing was lost.
    env.run_ok(reconcile=True)
    assert assert_current_equals_source(env) > 0
