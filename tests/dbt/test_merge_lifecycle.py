"""H6 (full refresh leaves history alone), R1 hook (fault point), batch vars, the dbt unit tests
and the H3/C1 data tests' ability to fail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.dbt.helpers import DBT_THREADS_AS_SHIPPED, failures
from tests.dbt.scenario import (
    CONFIRM_PAYMENT_DELETION,
    T0,
    history_snapshot,
    load_batch_one,
    load_batch_two,
)


def _two_batches(env):
    load_batch_one(env)
    res = env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    load_batch_two(env)
    res = env.fast_build(2, T0 + timedelta(hours=3), extra_vars=CONFIRM_PAYMENT_DELETION)
    assert res.success, failures(res)


def test_h6_full_refresh_leaves_history_and_current_untouched(dbt_env):
    _two_batches(dbt_env)  # merge models only: the --full-refresh build below is the whole one
    before = history_snapshot(dbt_env)
    assert len(before["exigo_history.customers_history"]) == 3  # a closed version exists
    # Same queue, next batch id, --full-refresh: without full_refresh: false every history table
    # would be rebuilt from this one snapshot and the closed versions would be gone.
    res = dbt_env.build(3, T0 + timedelta(hours=4), "--full-refresh", env=DBT_THREADS_AS_SHIPPED)
    assert res.success, failures(res)
    assert history_snapshot(dbt_env) == before
    # The example profile's two dbt threads: every dbt build in this suite runs models and
    # tests concurrently on one DuckDB file, as the flow does.
    node_threads = {r.thread_id for r in res.result.results if r.node.resource_type != "operation"}
    assert len(node_threads) == 2


def test_batch_vars_are_required(dbt_env):
    load_batch_one(dbt_env)
    cases = [
        # No vars and no batch in flight in the ledger: refused, never a made-up batch id.
        ({"exigo_batch_refreshed_at": "2026-01-05T09:00:00"}, "no batch to merge"),
        ({"exigo_batch_id": 1}, "no batch to merge"),
        (
            {"exigo_batch_id": 1, "exigo_batch_refreshed_at": "yesterday"},
            "must be an ISO timestamp",
        ),
        (
            {
                "exigo_batch_id": "1; drop table x",
                "exigo_batch_refreshed_at": "2026-01-05T09:00:00",
            },
            "must be a non-negative integer",
        ),
    ]
    for vars_, message in cases:
        res = dbt_env.invoke("run", "--select", "stg_exigo__customers", extra_vars=vars_)
        assert not res.success, vars_
        assert message in " ".join(failures(res)), vars_


def test_a_handed_batch_must_be_the_ledgers_batch_in_flight(dbt_env):
    # The flow hands dbt its batch in the environment. One that is not the batch the ledger has
    # in flight (another id, or another refresh time) stops the run before any node merges.
    load_batch_one(dbt_env)
    refreshed_at = T0 + timedelta(hours=1)
    began, later = refreshed_at.isoformat(), (refreshed_at + timedelta(seconds=1)).isoformat()
    for wrong, handed in (
        ({"EXIGO_SYNC_BATCH_ID": "2"}, f"handed batch 2 (refresh began {began})"),
        ({"EXIGO_SYNC_BATCH_REFRESHED_AT": later}, f"handed batch 1 (refresh began {later})"),
    ):
        res = dbt_env.fast_build(1, refreshed_at, env=wrong)
        assert not res.success, wrong
        message = " ".join(failures(res))
        assert handed in message, message
        assert "the ledger's batch in flight is batch 1" in message, message
        assert not dbt_env.table_exists("exigo_history", "customers_history"), wrong


def test_a_batch_not_handed_is_read_from_the_ledger(dbt_env):
    # A hand-run `dbt build` gets no batch in its environment: it merges the ledger's batch.
    load_batch_one(dbt_env)
    res = dbt_env.fast_build(7, T0 + timedelta(hours=1), handed=False)
    assert res.success, failures(res)
    rows = dbt_env.query("select distinct batch_id from exigo_history.customers_history")
    assert rows == [{"batch_id": 7}]


def test_r1_fault_before_current_heals_on_next_batch(dbt_env):
    load_batch_one(dbt_env)
    res = dbt_env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    load_batch_two(dbt_env)
    res = dbt_env.fast_build(
        2, T0 + timedelta(hours=3), env={"EXIGO_SYNC_FAULT": "before_current"},
        extra_vars=CONFIRM_PAYMENT_DELETION,
    )  # fmt: skip
    assert not res.success
    assert "injected fault at 'before_current'" in " ".join(failures(res))
    # History merged batch 2, current did not: it still shows batch 1's Ann.
    assert (
        dbt_env.query(
            "select first_name from exigo_current.customers_current where customer_id = 1"
        )[0]["first_name"]
        == "Ann"
    )
    # Next batch (nothing new in the queue) heals current from history.
    load_batch_two(dbt_env)
    res = dbt_env.fast_build(3, T0 + timedelta(hours=5), extra_vars=CONFIRM_PAYMENT_DELETION)
    assert res.success, failures(res)
    assert (
        dbt_env.query(
            "select first_name from exigo_current.customers_current where customer_id = 1"
        )[0]["first_name"]
        == "Anna"
    )
    assert dbt_env.query("select is_deleted from exigo_current.payments_current")[0]["is_deleted"]


def test_dbt_unit_tests_pass(merged_env):
    # merged_env: the unit tests read column types from the built tables
    # Disabled by default (the batch build must not run them on an empty warehouse) ...
    res = merged_env.invoke("ls", "--resource-type", "unit_test")
    assert res.success and res.result == [], res.result
    # ... enabled on demand.
    res = merged_env.invoke(
        "test", "--select", "test_type:unit", extra_vars={"exigo_run_unit_tests": True}
    )
    assert res.success, failures(res)
    names = sorted(r.node.name for r in res.result.results if r.node.resource_type == "unit_test")
    assert names == sorted(
        [
            "ut_customers_history_new_key",
            "ut_customers_history_change",
            "ut_customers_history_identical_redelivery",
            "ut_customers_history_earlier_stamp_from_a_later_refresh",
            "ut_customers_history_first_run",
            "ut_order_details_history_removed_line",
            "ut_payments_history_deleted_at_source",
            "ut_payments_history_deletion_not_repeated",
            "ut_payments_history_return_after_deletion",
            "ut_stg_exigo__customers_two_rows_for_one_key",
            "ut_int_order_status_changes_durations",
            "ut_int_order_status_changes_incremental",
        ]
    )


def test_h3_c1_data_tests_catch_corruption(merged_env):
    """The H3/C1 data tests are not vacuous: break history and current state on purpose and each
    fails naming the rule broken (one test per layer and entity checks every rule of it)."""
    import duckdb

    con = duckdb.connect(str(merged_env.warehouse))
    try:
        # customer 2: a second current version overlapping the first (H3), which its
        # current-state row is not (C1); customer 1: a second current-state row (C1).
        con.execute(
            "insert into exigo_history.customers_history (customer_id, first_name, valid_from, "
            "valid_to, is_current, is_deleted, row_hash, batch_id, history_version_id) values "
            "(2, 'Dup', timestamp '2026-01-01 00:00:00', null, true, false, 'zz', 9, '2@9')"
        )
        con.execute(
            "insert into exigo_current.customers_current "
            "select * from exigo_current.customers_current where customer_id = 1"
        )
    finally:
        con.close()
    res = merged_env.invoke(
        "test", "--select", "customers_history", "customers_current", "--exclude", "test_type:unit"
    )
    assert not res.success
    rules = broken_rules(merged_env, res)
    assert {"exigo_contiguous_intervals", "exigo_current_matches_history"} <= rules.keys(), rules
    assert (2, "a second current version") in rules["exigo_contiguous_intervals"], rules
    assert rules["exigo_current_matches_history"] == {
        (1, "more than one current-state row"),
        (2, "differs from the current version"),
    }, rules


def failed_customers_tests(res) -> dict[str, Any]:
    """The customers data tests that failed, by test name (`exigo_contiguous_intervals`): their
    nodes."""
    return {
        r.node.name.split("_customers")[0]: r.node
        for r in res.result.results
        if str(r.status) == "fail"
    }


def broken_rules(env, res) -> dict[str, set[tuple[int, str]]]:
    """(customer_id, broken_rule) of each failed test's failing rows: the SQL dbt compiled for
    it, run again."""
    import duckdb

    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        return {
            name: set(
                con.execute(
                    f"select customer_id, broken_rule from ({node.compiled_code})"
                ).fetchall()
            )
            for name, node in failed_customers_tests(res).items()
        }
    finally:
        con.close()


def test_h3_c1_batch_checks_cover_exactly_the_keys_the_batch_wrote(merged_env):
    """The per-batch contract tests read only the keys their batch wrote (so a batch costs what
    its changes cost) and still catch a broken interval on those keys; a break on a key the batch
    did not write is left to the full check (the nightly reconciliation run, a plain dbt test)."""
    import duckdb

    con = duckdb.connect(str(merged_env.warehouse))
    try:  # batch 9 wrote a second current row for customer 2 (H3) ...
        con.execute(
            "insert into exigo_history.customers_history (customer_id, first_name, valid_from, "
            "valid_to, is_current, is_deleted, row_hash, batch_id, history_version_id) values "
            "(2, 'Dup', timestamp '2026-01-01 00:00:00', null, true, false, 'zz', 9, '2@9')"
        )
    finally:
        con.close()
    select = ("test", "--select", "customers_history", "--exclude", "test_type:unit")
    in_batch_9 = merged_env.invoke(*select, extra_vars={"exigo_batch_id": 9})
    assert "exigo_contiguous_intervals" in failed_customers_tests(in_batch_9)
    # ... which batch 2 did not write: its own checks do not read customer 2's rows ...
    in_batch_2 = merged_env.invoke(*select, extra_vars={"exigo_batch_id": 2})
    assert "exigo_contiguous_intervals" not in failed_customers_tests(in_batch_2)
    # ... and the full check finds it whoever wrote it.
    full = merged_env.invoke(*select)
    assert "exigo_contiguous_intervals" in failed_customers_tests(full)


def test_h8_a_model_failing_after_its_write_leaves_its_table_as_it_was(merged_env):
    """H8 on DuckDB, for real: a history model that fails after its delete+insert ran (a
    post-hook inside the model's transaction raises) leaves history exactly as it was; the same
    batch without the fault does change it (so the write was real)."""
    from tests.dbt.helpers import default_row, put_rows

    t = T0 + timedelta(hours=5)
    put_rows(
        merged_env.source, "queue", "Customers",
        [default_row("Customers", CustomerID=2, FirstName="Bea", ModifiedDate=t)],
    )  # fmt: skip
    before = history_snapshot(merged_env)
    res = merged_env.fast_build(
        3, t, env={"EXIGO_SYNC_FAULT": "after_history_write"},
        extra_vars=CONFIRM_PAYMENT_DELETION,
    )  # fmt: skip
    assert not res.success
    assert "injected fault at 'after_history_write'" in " ".join(failures(res))
    assert history_snapshot(merged_env) == before
    res = merged_env.fast_build(3, t, extra_vars=CONFIRM_PAYMENT_DELETION)
    assert res.success, failures(res)
    assert history_snapshot(merged_env) != before


def test_b4_dbt_threads_listing_the_flows_schemas_at_once_all_find_what_the_flow_landed(
    merged_env, monkeypatch
):
    """dbt-adapters counts a schema as cached from the first relation it adds while listing it:
    a second thread asking in that moment read a partial list, and a table the flow had landed
    looked missing ("the landing holds batch None's copy of queue.CustomerAccounts", a `__reopen`
    table not read). Here dbt's cache is slowed while it adds the landing's tables, so the two
    threads' first nodes (both reading the landing) ask in that moment every time; the batch
    must still merge (the project lists the flow's schemas before dbt's threads start)."""
    import threading
    import time

    from dbt.adapters.cache import RelationsCache

    slow_add = RelationsCache.add
    listers: set[str] = set()

    def add(self, relation):  # real dbt cache, with a pause per landing table
        slow_add(self, relation)
        if str(relation.schema).startswith("exigo_landing"):
            listers.add(threading.current_thread().name)
            time.sleep(0.05)

    monkeypatch.setattr(RelationsCache, "add", add)
    res = merged_env.fast_build(3, T0 + timedelta(hours=5), env=DBT_THREADS_AS_SHIPPED)
    assert res.success, failures(res)
    assert listers == {"MainThread"}  # listed before the threads, never by a model's thread
