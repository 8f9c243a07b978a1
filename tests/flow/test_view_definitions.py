"""The views (marts) are recreated by a batch only when their definition may have changed
(exigo_sync.view_definitions): real batches through the flow, reading dbt's run results and the
warehouse's own views."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from exigo_sync.settings import REPO_ROOT
from tests.flow.helpers import SyncEnv, advance, models_run, nodes_run, with_marts

MART_VIEWS = {p.stem for p in (REPO_ROOT / "dbt_project" / "models" / "marts").glob("*.sql")}
# fct_payments with one more column: another definition of the same view.
PROBE = "p.batch_id,\n    1 as exigo_probe"


def fct_payments_columns(env: SyncEnv) -> set[str]:
    rows = env.query(
        env.warehouse,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'exigo_marts' AND table_name = 'fct_payments'",
    )
    return {name for (name,) in rows}


def test_views_are_recreated_only_when_their_definition_may_have_changed(
    merged_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = merged_env
    with_marts(monkeypatch)  # the default build but its data tests: every view is created
    assert MART_VIEWS and len(MART_VIEWS) >= 9

    # The first batch that builds them creates every view and records their fingerprint.
    advance(env, 2)
    env.run_ok()
    assert models_run(env) >= MART_VIEWS
    assert len(env.batches()[-1]["views_fingerprint"]) == 64

    # Nothing that makes them changed: the next batch leaves them alone, and they show its data.
    # Its build is the default one (data tests too): the views' own tests still run.
    advance(env, 2)
    with monkeypatch.context() as m:
        m.delenv("EXIGO_SYNC_DBT_EXCLUDE")
        env.run_ok()
    tests_on_views = {t for t in nodes_run(env, "test") if "_fct_" in t}
    assert len(tests_on_views) >= 4, tests_on_views
    ran = models_run(env)
    assert not MART_VIEWS & ran
    assert {"customers_history", "customers_current", "int_order_status_changes"} <= ran
    assert env.batches()[-1]["views_fingerprint"] is None
    ((orders_current,),) = env.query(
        env.warehouse, "SELECT count(*) FROM exigo_current.orders_current"
    )
    assert env.query(env.warehouse, "SELECT count(*) FROM exigo_marts.fct_orders") == [
        (orders_current,)
    ]

    # A view dropped by hand: the next batch creates the views again.
    with duckdb.connect(str(env.warehouse)) as con:
        con.execute("DROP VIEW exigo_marts.fct_payments")
    advance(env, 1)
    env.run_ok()
    assert models_run(env) >= MART_VIEWS
    assert "batch_id" in fct_payments_columns(env)

    # Another definition (a copy of the project, fct_payments with one more column), in a batch
    # that fails after dbt built it: the views hold the new definition, the ledger `pending`.
    project = env.root / "dbt_project"
    shutil.copytree(
        REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    mart = project / "models" / "marts" / "fct_payments.sql"
    assert "p.batch_id\n" in mart.read_text()
    mart.write_text(mart.read_text().replace("p.batch_id\n", PROBE + "\n", 1))
    monkeypatch.setenv("EXIGO_SYNC_DBT_PROJECT_DIR", str(project))
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "after_dbt")
    advance(env, 1)
    assert env.run().is_failed()
    assert "exigo_probe" in fct_payments_columns(env)
    assert env.batches()[-1]["views_fingerprint"] == "pending"

    # Back to the shipped project, whose fingerprint a merged batch recorded before: the views
    # are created again all the same (the failed batch left them as the other definition).
    monkeypatch.delenv("EXIGO_SYNC_FAULT")
    monkeypatch.delenv("EXIGO_SYNC_DBT_PROJECT_DIR")
    advance(env, 1)
    env.run_ok()
    assert models_run(env) >= MART_VIEWS
    assert "exigo_probe" not in fct_payments_columns(env)
    assert len(env.batches()[-1]["views_fingerprint"]) == 64
