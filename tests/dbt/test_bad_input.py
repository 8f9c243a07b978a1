"""B1, B3, B4 (and H7's deletion versions, W4's future stamps) against the hand-made source. (S2,
the sensitive-column policy: test_s2_policy.py; B1 below also checks that a dropped column stays
out of a reject.)"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from exigo_sync.warehouse.landing import LandingError
from tests.dbt.helpers import default_row, execute_source, failures, put_rows
from tests.dbt.scenario import T0, history_snapshot, load_batch_one


def test_h7_removed_line_and_deleted_payment_get_deletion_versions(merged_env):
    line = merged_env.query(
        "select * from exigo_current.order_details_current where order_id = 10 and order_line = 2"
    )
    assert line[0]["is_deleted"] and line[0]["deleted_at"] == T0 + timedelta(hours=2)
    payment = merged_env.query("select * from exigo_current.payments_current where payment_id = 5")
    assert payment[0]["is_deleted"] and payment[0]["deleted_at"] == T0 + timedelta(hours=3)
    versions = merged_env.query(
        "select valid_from, valid_to, is_deleted from exigo_history.payments_history "
        "where payment_id = 5 order by valid_from"
    )
    assert [(v["valid_to"], v["is_deleted"]) for v in versions] == [
        (T0 + timedelta(hours=3), False),
        (None, True),
    ]
    # H7: repeated runs add no further deletion versions.
    res = merged_env.fast_build(3, T0 + timedelta(hours=4))
    assert res.success, failures(res)
    again = merged_env.query("select count(*) as n from exigo_history.payments_history")
    assert again[0]["n"] == 2


def test_w4_a_future_stamp_is_capped_and_never_pins_its_key(merged_env):
    """A ModifiedDate far beyond the refresh (a 9999-12-31 sentinel) loads, true from the refresh
    that saw it, with its stamp kept in modified_date; the key's next real change, stamped before
    the sentinel, still becomes current after it."""
    sentinel = datetime(9999, 12, 31, 23, 59, 59, 997000)
    put_rows(
        merged_env.source, "queue", "Customers",
        [default_row("Customers", CustomerID=2, FirstName="Bea", ModifiedDate=sentinel)],
    )  # fmt: skip
    res = merged_env.fast_build(3, T0 + timedelta(hours=5))
    assert res.success, failures(res)
    real = T0 + timedelta(hours=6)
    put_rows(
        merged_env.source, "queue", "Customers",
        [default_row("Customers", CustomerID=2, FirstName="Bo", ModifiedDate=real)],
    )  # fmt: skip
    res = merged_env.fast_build(4, T0 + timedelta(hours=7))
    assert res.success, failures(res)
    versions = merged_env.query(
        "select first_name, modified_date, valid_from, valid_to, is_current "
        "from exigo_history.customers_history where customer_id = 2 order by valid_from"
    )
    assert [tuple(v.values()) for v in versions] == [
        ("Bob", T0, T0, T0 + timedelta(hours=5), False),
        ("Bea", sentinel, T0 + timedelta(hours=5), real, False),
        ("Bo", real, real, None, True),
    ]


def test_w4_a_complete_warehouses_sweep_brings_in_a_key_no_window_delivered(merged_env):
    """A row the queue never showed (imported with a stamp older than every window) is found by
    a complete warehouse's key sweep and loaded, dated at its own stamp; the keys it already
    holds are left alone."""
    imported, changed = T0 - timedelta(days=1), T0 + timedelta(hours=2)
    put_rows(
        merged_env.source, "dbo", "Customers",
        [
            default_row("Customers", CustomerID=1, FirstName="Anna", ModifiedDate=changed),
            default_row("Customers", CustomerID=2, FirstName="Bob", ModifiedDate=T0),
            default_row("Customers", CustomerID=3, FirstName="Cy", ModifiedDate=imported),
        ],
    )  # fmt: skip
    put_rows(merged_env.source, "queue", "Customers", [])
    before = merged_env.query(
        "select * from exigo_history.customers_history where customer_id in (1, 2) order by all"
    )
    res = merged_env.fast_build(
        3, T0 + timedelta(hours=5), find_missing=True,
        extra_vars={"exigo_deletion_sweep_entities": ["payments", "customers"]},
    )  # fmt: skip
    assert res.success, failures(res)
    found = merged_env.query(
        "select first_name, valid_from, valid_to, is_current, is_deleted, batch_id "
        "from exigo_history.customers_history where customer_id = 3"
    )
    assert [tuple(r.values()) for r in found] == [("Cy", imported, None, True, False, 3)]
    after = merged_env.query(
        "select * from exigo_history.customers_history where customer_id in (1, 2) order by all"
    )
    assert after == before


def test_b1_null_key_rejected_good_rows_merge(dbt_env):
    load_batch_one(dbt_env)
    put_rows(
        dbt_env.source,
        "queue",
        "Customers",
        [
            default_row("Customers", CustomerID=1, FirstName="Ann", ModifiedDate=T0),
            default_row(
                "Customers",
                CustomerID=None,
                FirstName="Ghost",
                ModifiedDate=T0,
                PasswordHash=b"secret-hash",
            ),
        ],
    )
    put_rows(
        dbt_env.source,
        "queue",
        "OrderDetails",
        [
            default_row("OrderDetails", OrderID=10, OrderLine=1),
            default_row("OrderDetails", OrderID=99, OrderLine=1),  # parent order not in the batch
        ],
    )
    res = dbt_env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    assert [
        r["customer_id"]
        for r in dbt_env.query("select customer_id from exigo_current.customers_current")
    ] == [1]
    rejected = dbt_env.query(
        "select entity, batch_id, reason, raw_row from exigo_staging.exigo_rejected_rows "
        "order by entity"
    )
    assert [(r["entity"], r["batch_id"], r["reason"]) for r in rejected] == [
        ("customers", 1, "null key column CustomerID"),
        ("order_details", 1, "parent order not in batch"),
    ]
    assert '"FirstName":"Ghost"' in rejected[0]["raw_row"]
    # S2: a dropped secret does not reach the rejected-rows table either.
    assert "PasswordHash" not in rejected[0]["raw_row"]
    # Re-running the same batch id does not append the rejects twice.
    res = dbt_env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    assert len(dbt_env.query("select * from exigo_staging.exigo_rejected_rows")) == 2


def test_b4_missing_queue_table_fails_before_anything_merges(merged_env):
    before = history_snapshot(merged_env)
    put_rows(
        merged_env.source,
        "queue",
        "Customers",
        [
            default_row("Customers", CustomerID=3, ModifiedDate=T0 + timedelta(hours=5)),
        ],
    )
    execute_source(merged_env.source, 'drop table queue."CustomerSites"')
    # The batch stops while pinning its snapshot, before dbt runs at all.
    with pytest.raises(LandingError, match=r"queue\.CustomerSites is missing \(B4\)"):
        merged_env.fast_build(3, T0 + timedelta(hours=6))
    # Customers (a different entity) did not merge either.
    assert history_snapshot(merged_env) == before


def test_b4_missing_required_column_fails_naming_it(merged_env):
    before = history_snapshot(merged_env)
    execute_source(merged_env.source, 'alter table queue."Payments" drop column "ModifiedDate"')
    # The landing reads every table's columns before copying anything: it stops there (the
    # staging models check the same for a copy made some other way).
    with pytest.raises(LandingError, match="required column ModifiedDate is missing from queue "
                       r"table queue.Payments \(B4\); nothing was landed"):  # fmt: skip
        merged_env.fast_build(3, T0 + timedelta(hours=6))
    assert history_snapshot(merged_env) == before


def test_b3_uncastable_value_fails_naming_table_column_value(merged_env):
    before = history_snapshot(merged_env)
    execute_source(
        merged_env.source,
        """
        alter table queue."Orders" alter "ShippingTotal" type varchar;
        update queue."Orders" set "ShippingTotal" = 'twelve' where "OrderID" = 10;
    """,
    )
    res = merged_env.fast_build(3, T0 + timedelta(hours=6))
    assert not res.success
    messages = " ".join(failures(res))
    assert "queue.Orders, column ShippingTotal: value 'twelve' cannot be cast" in messages
    assert history_snapshot(merged_env) == before


def test_b3_castable_type_drift_is_accepted(dbt_env):
    """The documented type wins when the values still cast (e.g. money delivered as text)."""
    load_batch_one(dbt_env)
    execute_source(
        dbt_env.source,
        """
        alter table queue."Orders" alter "ShippingTotal" type varchar;
        update queue."Orders" set "ShippingTotal" = '12.5' where "OrderID" = 10;
    """,
    )
    res = dbt_env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    rows = dbt_env.query(
        "select shipping_total, typeof(shipping_total) as t from exigo_current.orders_current"
    )
    assert (str(rows[0]["shipping_total"]), rows[0]["t"]) == ("12.5000", "DECIMAL(19,4)")


def test_b3_added_column_flows_through_and_vanished_column_stays(merged_env):
    # A column added at the source arrives in the next snapshot (the queue mirrors dbo).
    execute_source(
        merged_env.source, 'alter table queue."Customers" add column "LoyaltyTier" varchar'
    )
    put_rows(
        merged_env.source,
        "queue",
        "Customers",
        [
            default_row(
                "Customers",
                CustomerID=2,
                FirstName="Bob",
                ModifiedDate=T0 + timedelta(hours=5),
                LoyaltyTier="gold",
            ),
        ],
    )
    res = merged_env.fast_build(3, T0 + timedelta(hours=6))
    assert res.success, failures(res)
    versions = merged_env.query(
        "select customer_id, valid_from, loyalty_tier, is_current "
        "from exigo_history.customers_history order by customer_id, valid_from"
    )
    assert [(v["customer_id"], v["loyalty_tier"], v["is_current"]) for v in versions] == [
        (1, None, False),
        (1, None, True),
        (2, None, False),
        (2, "gold", True),
    ]
    current = merged_env.query(
        "select customer_id, loyalty_tier from exigo_current.customers_current order by customer_id"
    )
    assert [(r["customer_id"], r["loyalty_tier"]) for r in current] == [(1, None), (2, "gold")]

    # The column disappears again, and a documented one (Fax) goes too: both stay, NULL from now.
    execute_source(
        merged_env.source,
        """
        alter table queue."Customers" drop column "LoyaltyTier";
        alter table queue."Customers" drop column "Fax";
    """,
    )
    bobby = default_row(
        "Customers", CustomerID=2, FirstName="Bobby", ModifiedDate=T0 + timedelta(hours=7)
    )
    del bobby["Fax"]
    put_rows(merged_env.source, "queue", "Customers", [bobby])
    res = merged_env.fast_build(4, T0 + timedelta(hours=8))
    assert res.success, failures(res)
    row = merged_env.query(
        "select first_name, loyalty_tier, fax from exigo_current.customers_current "
        "where customer_id = 2"
    )[0]
    assert row == {"first_name": "Bobby", "loyalty_tier": None, "fax": None}
    older = merged_env.query(
        "select fax from exigo_history.customers_history where customer_id = 2 and not is_current"
    )
    assert {r["fax"] for r in older} == {"x"}
