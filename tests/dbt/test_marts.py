"""The analyst marts on a small hand-made history: three batches run the way the flow runs them
(ledger row, `dbt build` reading the batch from the ledger, statistics, `merged`), then every
mart is compared with the values worked out by hand from the definitions in the docs overview:
daily sales with returns netted, order status transitions and lead times, the customer
lifecycle, data freshness, the point-in-time macros. And the mart tests are shown to catch what
they exist for."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from exigo_sync.dbt_runner import build_args
from exigo_sync.profiles import Target
from exigo_sync.source import RefreshResult
from exigo_sync.warehouse.ledger import Ledger
from tests.dbt.helpers import DbtEnv, create_source, default_row, failures, put_rows

T0 = datetime(2026, 1, 5, 8, 0, 0)
REFRESH = {1: T0 + timedelta(hours=1), 2: T0 + timedelta(hours=3), 3: T0 + timedelta(hours=5)}
DAY = datetime(2026, 1, 5)


def _customer(cid: int, status: int, ctype: int, modified: datetime, **kw) -> dict:
    return default_row(
        "Customers", CustomerID=cid, CustomerStatusID=status, CustomerTypeID=ctype,
        ModifiedDate=modified, FirstName=f"C{cid}", **kw,
    )  # fmt: skip


def _order(oid: int, cid: int, status: int, otype: int, modified: datetime, **kw) -> dict:
    values = {
        "OrderID": oid, "CustomerID": cid, "OrderStatusID": status, "OrderTypeID": otype,
        "ModifiedDate": modified, "OrderDate": DAY, "Country": "US", "CurrencyCode": "usd",
        **kw,
    }  # fmt: skip
    return default_row("Orders", **values)


def _money(sub: str, total: str, bv: str) -> dict:
    return {
        "SubTotal": Decimal(sub),
        "Total": Decimal(total),
        "BusinessVolumeTotal": Decimal(bv),
        "CommissionableVolumeTotal": Decimal(bv),
    }


# Batch 1 (the state at T0): the orders every daily-sales rule needs.
ORDERS_1 = [
    # Pending: not a sale yet (it moves on in batches 2 and 3).
    _order(100, 1, 1, 2, T0, **_money("100", "110", "50")),
    # Shipped the day before, later returned by 102: a sale on its own day.
    _order(
        101,
        2,
        9,
        4,
        T0,
        OrderDate=DAY - timedelta(days=1),
        ReturnOrderID=102,
        **_money("200", "220", "100"),
    ),
    # The return of 101 (RMA, booked, negative amounts): counts under 101's type, RecurringOrder.
    _order(102, 2, 7, 8, T0, IsRMA=True, **_money("-50", "-55", "-25")),
    # Cancelled: not a sale.
    _order(103, 1, 4, 2, T0, **_money("999", "999", "999")),
    # A sale in another country and currency.
    _order(104, 3, 7, 2, T0, Country="CA", CurrencyCode="cad", **_money("40", "44", "20")),
    # A return whose original is unknown, stored with positive amounts: its own type, netted.
    _order(105, 1, 7, 8, T0, IsRMA=True, **_money("30", "33", "15")),
]
CUSTOMERS_1 = [
    _customer(1, 1, 3, T0),  # Active distributor
    _customer(2, 1, 1, T0),  # Active retail
    _customer(3, 2, 1, T0),  # Inactive
]
LINES_100 = [default_row("OrderDetails", OrderID=100, OrderLine=1, PriceTotal=Decimal("100"))]
PAYMENT = default_row("Payments", PaymentID=500, CustomerID=2, OrderID=101, PaymentTypeID=1,
                      Amount=Decimal("220"), ModifiedDate=T0)  # fmt: skip


def _load(env: DbtEnv, batch: int) -> None:
    put_rows(env.source, "dbo", "Payments", [PAYMENT])
    if batch == 1:
        queue = {
            "Customers": CUSTOMERS_1,
            "Orders": ORDERS_1,
            "OrderDetails": LINES_100
            + [default_row("OrderDetails", OrderID=o, OrderLine=1) for o in range(101, 106)],
            "Payments": [PAYMENT],
        }
    elif batch == 2:  # order 100 accepted; customer 3 activated, customer 2 terminated
        t = T0 + timedelta(hours=2)
        queue = {
            "Customers": [_customer(3, 1, 1, t), _customer(2, 3, 1, t)],
            "Orders": [_order(100, 1, 7, 2, t, **_money("100", "110", "50"))],
            "OrderDetails": LINES_100,
            "Payments": [],
        }
    else:  # order 100 shipped; customer 1 edits a name (not a lifecycle event)
        t = T0 + timedelta(hours=4)
        queue = {
            "Customers": [_customer(1, 1, 3, t, LastName="Renamed")],
            "Orders": [_order(100, 1, 9, 2, t, ShippedDate=t, **_money("100", "110", "50"))],
            "OrderDetails": LINES_100,
            "Payments": [],
        }
    for table in ("Customers", "Orders", "OrderDetails", "Payments", "CustomerAccounts",
                  "CustomerSites"):  # fmt: skip
        put_rows(env.source, "queue", table, queue.get(table, []))


def _run_batch(env: DbtEnv, batch: int) -> None:
    """What the flow does around dbt: ledger `refreshing` -> `refreshed`, the snapshot pinned in
    the landing, `dbt build` (the batch id read from the ledger, no vars), statistics +
    `merged`."""
    target = Target("duckdb", "duckdb", {"path": str(env.warehouse)})
    with Ledger.open(target) as led:
        batch_id = led.start_batch(
            flow_run_id=None, target_name="duckdb", window_kind="watermark", requested_start=T0
        )
        assert batch_id == batch
        led.mark_refreshed(
            batch_id, RefreshResult(T0, REFRESH[batch], REFRESH[batch] + timedelta(seconds=1))
        )
    env.pin(batch_id, ["payments"])
    res = env.invoke(
        "build", "--exclude-resource-type", "unit_test",
        extra_vars={"exigo_deletion_sweep_entities": ["payments"]},
    )  # fmt: skip
    assert res.success, failures(res)
    with Ledger.open(target) as led:
        led.mark_merged(batch_id, None, led.compute_stats(batch_id))


@pytest.fixture(scope="module")
def marts_template(tmp_path_factory) -> Path:
    env = DbtEnv(tmp_path_factory.mktemp("marts"))
    create_source(env.source)
    for batch in (1, 2, 3):
        _load(env, batch)
        _run_batch(env, batch)
    return env.tmp


@pytest.fixture
def marts_env(tmp_path: Path, marts_template: Path) -> DbtEnv:
    return DbtEnv.copy_of(marts_template, tmp_path)


def test_daily_sales_books_accepted_and_shipped_orders_and_nets_returns(marts_env):
    rows = marts_env.query(
        "select sales_date, country, currency_code, order_type_id, order_type, orders, returns, "
        "gross_sub_total, returned_sub_total, net_sub_total, gross_total, returned_total, "
        "net_total, net_business_volume from exigo_marts.fct_daily_sales order by 1, 2, 4"
    )
    d = [tuple(r.values()) for r in rows]
    day, before = date(2026, 1, 5), date(2026, 1, 4)
    dec = Decimal
    # fmt: off
    assert d == [
        # 101: shipped, a sale on its own day although returned later.
        (before, "US", "usd", 4, "RecurringOrder", 1, 0, dec(200), dec(0), dec(200), dec(220),
         dec(0), dec(220), dec(100)),
        # 104: accepted, Canada.
        (day, "CA", "cad", 2, "ShoppingCart", 1, 0, dec(40), dec(0), dec(40), dec(44), dec(0),
         dec(44), dec(20)),
        # 100 (shipped by batch 3) is a sale; 103 (cancelled) is not.
        (day, "US", "usd", 2, "ShoppingCart", 1, 0, dec(100), dec(0), dec(100), dec(110), dec(0),
         dec(110), dec(50)),
        # 102 returns 101: on its own day, under 101's type, amounts netted.
        (day, "US", "usd", 4, "RecurringOrder", 0, 1, dec(0), dec(50), dec(-50), dec(0), dec(55),
         dec(-55), dec(-25)),
        # 105: a return of an unknown order, stored positive: its own type, netted all the same.
        (day, "US", "usd", 8, "ReturnOrder", 0, 1, dec(0), dec(30), dec(-30), dec(0), dec(33),
         dec(-33), dec(-15)),
    ]
    # fmt: on


def test_order_status_transitions_and_lead_time(marts_env):
    rows = marts_env.query(
        "select status_seq, previous_order_status, order_status, entered_at, left_at, "
        "seconds_in_status, is_current_status from exigo_marts.fct_order_status_transitions "
        "where order_id = 100 order by status_seq"
    )
    assert [tuple(r.values()) for r in rows] == [
        (1, None, "Pending", T0, T0 + timedelta(hours=2), 7200, False),
        (2, "Pending", "Accepted", T0 + timedelta(hours=2), T0 + timedelta(hours=4), 7200, False),
        (3, "Accepted", "Shipped", T0 + timedelta(hours=4), None, None, True),
    ]
    # Every other order: the one status it was seen in, open.
    others = marts_env.query(
        "select order_id, count(*) as n, bool_and(is_current_status) as open "
        "from exigo_marts.fct_order_status_transitions where order_id <> 100 group by order_id"
    )
    assert {(r["order_id"], r["n"], r["open"]) for r in others} == {
        (o, 1, True) for o in (101, 102, 103, 104, 105)
    }
    lead = marts_env.query(
        "select order_id, accepted_at, shipped_at, accepted_to_shipped_seconds "
        "from exigo_marts.fct_order_lead_times order by order_id"
    )
    assert lead[0] == {
        "order_id": 100,
        "accepted_at": T0 + timedelta(hours=2),
        "shipped_at": T0 + timedelta(hours=4),
        "accepted_to_shipped_seconds": 7200,
    }
    # 101 was first seen shipped: its acceptance was never delivered, so no lead time.
    assert lead[1] == {
        "order_id": 101,
        "accepted_at": None,
        "shipped_at": T0,
        "accepted_to_shipped_seconds": None,
    }
    # Incremental: batch 3 rewrote only order 100's episodes (the key it changed).
    batches = marts_env.query(
        "select order_id, batch_id from exigo_intermediate.int_order_status_changes "
        "where status_seq = 1 order by order_id"
    )
    assert [(r["order_id"], r["batch_id"]) for r in batches] == [
        (100, 3), (101, 1), (102, 1), (103, 1), (104, 1), (105, 1)
    ]  # fmt: skip


def test_marts_carry_the_lookup_names_and_plain_integer_counts(marts_env):
    """Where the README promises names, the marts join the lookups' current tables; counts are a
    plain integer type (DuckDB's sum() of integers would be a HUGEINT many clients cannot read)."""
    lines = marts_env.query(
        "select order_id, order_line, order_status_id, order_status, order_type_id, order_type, "
        "currency_code from exigo_marts.fct_order_lines where order_id in (100, 104) "
        "order by order_id"
    )
    assert [tuple(r.values()) for r in lines] == [
        (100, 1, 9, "Shipped", 2, "ShoppingCart", "usd"),
        (104, 1, 7, "Accepted", 2, "ShoppingCart", "cad"),
    ]
    lead = marts_env.query(
        "select order_id, order_type_id, order_type, order_status_id, order_status "
        "from exigo_marts.fct_order_lead_times where order_id in (100, 102) order by order_id"
    )
    assert [tuple(r.values()) for r in lead] == [
        (100, 2, "ShoppingCart", 9, "Shipped"),
        (102, 8, "ReturnOrder", 7, "Accepted"),
    ]
    types = marts_env.query(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'exigo_marts'"
    )
    assert not [r for r in types if "HUGEINT" in r["data_type"]], types
    counts = {
        r["column_name"]: r["data_type"]
        for r in types
        if r["table_name"] == "fct_daily_sales" and r["column_name"] in ("orders", "returns")
    }
    assert counts == {"orders": "BIGINT", "returns": "BIGINT"}


def test_customer_lifecycle_events(marts_env):
    rows = marts_env.query(
        "select customer_id, status_seq, event_type, event_at, previous_customer_status, "
        "customer_status, is_current_status from exigo_marts.fct_customer_lifecycle "
        "order by customer_id, status_seq"
    )
    t2 = T0 + timedelta(hours=2)
    assert [tuple(r.values()) for r in rows] == [
        # Customer 1 was renamed in batch 3: a new version, not a lifecycle event.
        (1, 1, "activation", T0, None, "Active", True),
        (2, 1, "activation", T0, None, "Active", False),
        (2, 2, "termination", t2, "Active", "Terminated", True),
        (3, 1, "first_seen", T0, None, "Inactive", False),
        (3, 2, "activation", t2, "Inactive", "Active", True),
    ]


def test_data_freshness_is_the_last_merged_batch_per_entity(marts_env):
    rows = {
        r["entity"]: r for r in marts_env.query("select * from exigo_marts.exigo_data_freshness")
    }
    assert set(rows) == {
        "customers", "orders", "order_details", "payments", "customer_accounts",
        "customer_sites", "order_statuses", "order_types", "payment_types",
        "customer_statuses", "customer_types",
    }  # fmt: skip
    for r in rows.values():
        assert (r["data_as_of"], r["last_merged_batch_id"]) == (REFRESH[3], 3), r
    # Physical deletions: payments and the lookups are swept every batch, the rest nightly.
    assert rows["payments"]["deletions_as_of"] == REFRESH[3]
    assert rows["order_statuses"]["deletions_as_of"] == REFRESH[3]
    assert rows["orders"]["deletions_as_of"] is None
    assert rows["orders"]["last_changed_batch_id"] == 3
    assert rows["customer_accounts"]["last_changed_batch_id"] is None
    # A batch in flight (not merged) does not move "data as of".
    con = duckdb.connect(str(marts_env.warehouse))
    try:
        con.execute(
            "insert into exigo_sync.batches (batch_id, status, started_at, refresh_started_at) "
            "values (4, 'refreshed', now(), ?)",
            [REFRESH[3] + timedelta(hours=2)],
        )
    finally:
        con.close()
    rows = marts_env.query("select distinct data_as_of from exigo_marts.exigo_data_freshness")
    assert rows == [{"data_as_of": REFRESH[3]}]


def _compile(env: DbtEnv, sql: str) -> str:
    res = env.invoke("compile", "--no-populate-cache", "--inline", sql)
    assert res.success, failures(res)
    return res.result.results[0].node.compiled_code


def test_point_in_time_macros_equal_the_interval_written_by_hand(marts_env):
    for hours in (0, 1, 2.5, 3, 4, 5):
        at = T0 + timedelta(hours=hours)
        by_macro = marts_env.query(
            _compile(
                marts_env,
                "select order_id, order_status_id from "
                f"{{{{ exigo_as_of('orders', '{at:%Y-%m-%d %H:%M}') }}}} o",
            )
        )
        by_hand = marts_env.query(
            "select order_id, order_status_id from exigo_history.orders_history "
            "where valid_from <= ? and (valid_to is null or valid_to > ?) and not is_deleted",
            [at, at],
        )
        key = sorted(by_macro, key=lambda r: r["order_id"])
        assert key == sorted(by_hand, key=lambda r: r["order_id"]), at
    status_of_100 = {
        hours: marts_env.query(
            _compile(
                marts_env,
                "select order_status_id from "
                f"{{{{ exigo_as_of('orders', '{T0 + timedelta(hours=hours):%Y-%m-%dT%H:%M}') }}}}"
                " o where order_id = 100",
            )
        )[0]["order_status_id"]
        for hours in (0, 2, 3.5, 4)
    }
    assert status_of_100 == {0: 1, 2: 7, 3.5: 7, 4: 9}
    # A point-in-time join with exigo_valid_at: each order with its customer's status as it was
    # when the order last changed (customer 3 was Inactive until T0 + 2h).
    joined = marts_env.query(
        _compile(
            marts_env,
            "select o.order_id, c.customer_status_id from {{ ref('fct_orders') }} o "
            "join {{ ref('customers_history') }} c on c.customer_id = o.customer_id "
            "and {{ exigo_valid_at('c', \"o.modified_date\") }} order by o.order_id",
        )
    )
    assert [(r["order_id"], r["customer_status_id"]) for r in joined] == [
        (100, 1), (101, 1), (102, 1), (103, 1), (104, 2), (105, 1)
    ]  # fmt: skip
    # Lookup versions exist only from the first batch that saw them.
    statuses_then = marts_env.query(
        _compile(marts_env, "select * from {{ exigo_as_of('order_statuses', '2026-01-05') }} s")
    )
    assert statuses_then == []


def test_mart_tests_pass_in_a_full_check_and_cost_nothing_in_a_batch(marts_env):
    res = marts_env.invoke("test", "--exclude", "test_type:unit")
    assert res.success, failures(res)
    ran = {r.node.name for r in res.result.results}
    for name in (
        "assert_marts_reconcile_with_current_state",
        "assert_daily_sales_reconcile_with_orders",
        "assert_status_changes_end_in_current_status",
    ):
        assert name in ran, name
    assert any(n.startswith("exigo_unique_grain_fct_daily_sales") for n in ran), sorted(ran)
    # A batch's own selection does not even schedule the whole-table ones (a node each) ...
    batch = build_args(batch_vars={}, select=None)
    listed = marts_env.invoke(
        "ls", "--resource-type", "test", "--output", "name",
        *batch[1:3], *batch[batch.index("--exclude"):],
    )  # fmt: skip
    assert listed.success, failures(listed)
    scheduled = set(listed.result)
    assert "assert_status_changes_end_in_current_status" in scheduled, sorted(scheduled)
    whole_table = {n for n in ran if n.startswith("exigo_unique_grain")} | {
        "assert_marts_reconcile_with_current_state", "assert_daily_sales_reconcile_with_orders",
    }  # fmt: skip
    assert not scheduled & whole_table, sorted(scheduled & whole_table)
    # ... and, run on purpose in a batch's build, they compile to a query that reads nothing.
    build_sql = _compiled_test_sql(
        marts_env, "assert_daily_sales_reconcile_with_orders", batch=True
    )
    assert "skipped_in_batch" in build_sql and "orders_current" not in build_sql
    full_sql = _compiled_test_sql(
        marts_env, "assert_daily_sales_reconcile_with_orders", batch=False
    )
    assert "orders_current" in full_sql


def _compiled_test_sql(env: DbtEnv, name: str, *, batch: bool) -> str:
    # A batch: `dbt build` with the batch's vars. A full check: a plain `dbt test` (a test run
    # given exigo_batch_id is scoped to that batch, as a batch is).
    if batch:
        res = env.invoke(
            "build", "--select", name, "--exclude-resource-type", "unit_test",
            batch_id=3, refreshed_at=REFRESH[3],
        )  # fmt: skip
    else:
        res = env.invoke("test", "--select", name, "--exclude-resource-type", "unit_test")
    assert res.success, failures(res)
    (result,) = [r for r in res.result.results if r.node.name == name]
    return result.node.compiled_code


def test_reconciliation_and_episode_tests_catch_corruption(marts_env):
    con = duckdb.connect(str(marts_env.warehouse))
    try:
        # A lookup id twice: every order of that type would be counted twice in the marts.
        con.execute(
            "insert into exigo_current.order_types_current (order_type_id, "
            "order_type_description, is_deleted) values (2, 'ShoppingCart again', false)"
        )
        # Order 100's last episode lost: the status-change table no longer ends in Shipped.
        con.execute(
            "delete from exigo_intermediate.int_order_status_changes "
            "where order_id = 100 and status_seq = 3"
        )
    finally:
        con.close()
    res = marts_env.invoke(
        "test", "--select", "assert_marts_reconcile_with_current_state",
        "assert_daily_sales_reconcile_with_orders", "assert_status_changes_end_in_current_status",
    )  # fmt: skip
    failed = {r.node.name for r in res.result.results if str(r.status) == "fail"}
    assert failed == {
        "assert_marts_reconcile_with_current_state",
        "assert_daily_sales_reconcile_with_orders",
        "assert_status_changes_end_in_current_status",
    }, failed


def test_as_of_demo_query_is_the_macro_shape(marts_env):
    """`make demo` ends with orders as they were at an instant; its SQL is exigo_as_of's."""
    from exigo_sync import demo

    compiled = _compile(marts_env, "{{ exigo_as_of('orders', '2026-01-05 09:00') }}")
    literal = "cast('2026-01-05T09:00:00' as timestamp)"
    assert compiled.count(literal) == 2

    def norm(sql: str) -> str:
        sql = re.sub(
            r'"warehouse"\."exigo_history"\."orders_history"', "exigo_history.orders_history", sql
        )
        return re.sub(r"\s+", " ", sql).strip()

    assert norm(compiled.replace(literal, "?")) in norm(demo.AS_OF_QUERY)
