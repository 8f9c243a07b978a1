"""The lookups are merged by a batch only when they may have changed
(exigo_sync.lookup_contents): real batches through the flow, reading dbt's run results, the
warehouse's history and current state, and the ledger."""

from __future__ import annotations

import duckdb
import pytest

from exigo_sync.catalog import LOOKUP_ENTITY_NAMES, LOOKUP_TABLES
from exigo_sync.naming import column_name, entity_name
from tests.flow.helpers import SyncEnv, advance, models_run, nodes_run, with_marts

LOOKUP_MODELS = {
    name
    for entity in LOOKUP_ENTITY_NAMES
    for name in (f"stg_exigo__{entity}", f"{entity}_history", f"{entity}_current")
}
SHIPPED = 9  # an order status every simulator has


def rename_shipped(env: SyncEnv, description: str) -> None:
    """An Exigo administrator renames an order status in the back office (dbo, no queue)."""
    with duckdb.connect(str(env.source)) as con:
        con.execute(
            "UPDATE dbo.OrderStatuses SET OrderStatusDescription = ? WHERE OrderStatusID = ?",
            [description, SHIPPED],
        )


def shipped_in_warehouse(env: SyncEnv) -> tuple[str, str]:
    """Order status 9's description in current state, and in its current history version."""
    [(current,)] = env.query(
        env.warehouse,
        "SELECT order_status_description FROM exigo_current.order_statuses_current "
        "WHERE order_status_id = ?",
        [SHIPPED],
    )
    [(history,)] = env.query(
        env.warehouse,
        "SELECT order_status_description FROM exigo_history.order_statuses_history "
        "WHERE order_status_id = ? AND is_current",
        [SHIPPED],
    )
    return current, history


def assert_t1_lookups_are_the_sources(env: SyncEnv) -> None:
    """T1 for the lookups: each one's live current state is, row for row, the source's."""
    for table, spec in LOOKUP_TABLES.items():
        names = [c.name for c in spec.columns]
        source = env.query(env.source, f'SELECT {", ".join(names)} FROM dbo."{table}"')
        current = env.query(
            env.warehouse,
            f"SELECT {', '.join(column_name(n) for n in names)} "
            f"FROM exigo_current.{entity_name(table)}_current WHERE NOT is_deleted",
        )
        assert sorted(current) == sorted(source), table


def test_lookups_are_merged_only_when_they_may_have_changed(
    merged_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = merged_env
    with_marts(monkeypatch)  # the default build but its data tests: a routine build
    assert len(LOOKUP_MODELS) == 15

    # The first routine batch merges the lookups and records what it merged.
    advance(env, 2)
    env.run_ok()
    assert models_run(env) >= LOOKUP_MODELS
    assert len(env.batches()[-1]["lookups_fingerprint"]) == 64
    assert_t1_lookups_are_the_sources(env)

    # Nothing changed in them: the next batch leaves their models and their tests out, and is
    # merged. Its build is the default one, data tests too: the others' tests still run.
    advance(env, 2)
    with monkeypatch.context() as m:
        m.delenv("EXIGO_SYNC_DBT_EXCLUDE")
        env.run_ok()
    ran, tests = models_run(env), nodes_run(env, "test")
    assert not LOOKUP_MODELS & ran
    assert {"stg_exigo__orders", "orders_history", "orders_current"} <= ran
    assert any("orders_history" in t for t in tests)
    assert not any(entity in t for t in tests for entity in LOOKUP_ENTITY_NAMES), tests
    last = env.batches()[-1]
    assert (last["status"], last["lookups_fingerprint"]) == ("merged", None)
    assert_t1_lookups_are_the_sources(env)

    # A status renamed, a payment type added and a customer type removed at the source: the
    # next batch merges the lookups again, the removed one flagged deleted in current state.
    rename_shipped(env, "Shipped to the customer")
    with duckdb.connect(str(env.source)) as con:
        con.execute("INSERT INTO dbo.PaymentTypes VALUES (99, 'Store credit')")
        [(removed,)] = con.execute("SELECT max(CustomerTypeID) FROM dbo.CustomerTypes").fetchall()
        con.execute("DELETE FROM dbo.CustomerTypes WHERE CustomerTypeID = ?", [removed])
    advance(env, 1)
    env.run_ok()
    assert models_run(env) >= LOOKUP_MODELS
    assert shipped_in_warehouse(env) == ("Shipped to the customer",) * 2
    assert_t1_lookups_are_the_sources(env)
    assert env.query(
        env.warehouse,
        "SELECT is_deleted FROM exigo_current.customer_types_current WHERE customer_type_id = ?",
        [removed],
    ) == [(True,)]

    # Renamed again, in a batch that dies between history and current state: history holds
    # the new name, current state the old one, and the ledger `pending`.
    rename_shipped(env, "Shipped (renamed twice)")
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "before_current")
    advance(env, 1)
    assert env.run().is_failed()
    assert env.batches()[-1]["lookups_fingerprint"] == "pending"
    assert shipped_in_warehouse(env) == ("Shipped to the customer", "Shipped (renamed twice)")

    # Renamed back: the lookups are value for value what the last merged batch recorded, yet
    # the failed batch's mark makes the next one merge them, and history follows the source.
    rename_shipped(env, "Shipped to the customer")
    monkeypatch.delenv("EXIGO_SYNC_FAULT")
    advance(env, 1)
    env.run_ok()
    assert models_run(env) >= LOOKUP_MODELS
    assert shipped_in_warehouse(env) == ("Shipped to the customer",) * 2
    assert len(env.batches()[-1]["lookups_fingerprint"]) == 64
    assert_t1_lookups_are_the_sources(env)
