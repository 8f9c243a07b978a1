"""Lookups (OrderStatuses, OrderTypes, PaymentTypes, CustomerStatuses, CustomerTypes) are SCD2
entities of kind `lookup`: read whole from dbo with every batch, dated at the batch's refresh
(a lookup has no ModifiedDate), a renamed value is a new version, a removed value a deletion
version (H7 by sweep), a value that comes back a new live one; an emptied lookup is refused (H9);
the marts show the lookups' current names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exigo_sync.catalog import LOOKUP_TABLES
from exigo_sync.naming import entity_name
from exigo_sync.warehouse.landing import LandingError
from tests.dbt.helpers import execute_source, failures
from tests.dbt.scenario import T0, load_batch_two

REFRESH_3 = T0 + timedelta(hours=5)
REFRESH_4 = T0 + timedelta(hours=7)


def test_every_lookup_has_staging_history_and_current(merged_env):
    """The two-batch warehouse: each lookup holds every source value, one live version each,
    dated at batch 1's refresh (the first batch that saw it)."""
    for lookup in LOOKUP_TABLES.values():
        entity = entity_name(lookup.name)
        current = merged_env.query(f"select * from exigo_current.{entity}_current")
        assert len(current) == len(lookup.values), entity
        assert {r["batch_id"] for r in current} == {1}, entity
        assert {r["valid_from"] for r in current} == {T0 + timedelta(hours=1)}, entity
        assert not any(r["is_deleted"] for r in current), entity
        history = merged_env.query(f"select count(*) as n from exigo_history.{entity}_history")
        assert history[0]["n"] == len(lookup.values), entity


def test_h7_lookup_rename_removal_addition_and_return_are_versions(merged_env):
    env = merged_env
    # Batch 3: the company renames Shipped, removes customer type 3, adds an order type.
    load_batch_two(env)  # the queue as batch 2 left it: nothing new for the entities
    execute_source(
        env.source,
        """update dbo."OrderStatuses" set "OrderStatusDescription" = 'Dispatched'
           where "OrderStatusID" = 9;
           update dbo."OrderStatuses" set "OrderStatusDescription" = 'Draft'
           where "OrderStatusID" = 0;
           delete from dbo."CustomerTypes" where "CustomerTypeID" = 3;
           insert into dbo."OrderTypes" values (12, 'Subscription');""",
    )
    res = env.fast_build(3, REFRESH_3)
    assert res.success, failures(res)

    shipped = env.query(
        "select * from exigo_history.order_statuses_history where order_status_id = 9 "
        "order by valid_from"
    )
    assert [(r["order_status_description"], r["valid_from"], r["valid_to"]) for r in shipped] == [
        ("Shipped", T0 + timedelta(hours=1), REFRESH_3),
        ("Dispatched", REFRESH_3, None),
    ]
    assert [r["is_current"] for r in shipped] == [False, True]
    distributor = env.query(
        "select * from exigo_history.customer_types_history where customer_type_id = 3 "
        "order by valid_from"
    )
    assert [(r["is_deleted"], r["valid_from"], r["valid_to"]) for r in distributor] == [
        (False, T0 + timedelta(hours=1), REFRESH_3),
        (True, REFRESH_3, None),
    ]
    # The deletion version repeats the last live values (H7).
    assert distributor[1]["customer_type_description"] == "Distributor"
    assert distributor[1]["deleted_at"] == REFRESH_3
    subscription = env.query(
        "select * from exigo_current.order_types_current where order_type_id = 12"
    )
    assert [
        (r["order_type_description"], r["valid_from"], r["batch_id"]) for r in subscription
    ] == [("Subscription", REFRESH_3, 3)]

    # Batch 4: nothing changes -> nothing new (H4); then the removed type comes back.
    res = env.fast_build(4, REFRESH_4)
    assert res.success, failures(res)
    assert len(env.query("select * from exigo_history.customer_types_history")) == 4
    assert len(env.query("select * from exigo_history.order_statuses_history")) == 13
    execute_source(env.source, """insert into dbo."CustomerTypes" values (3, 'Distributor')""")
    res = env.fast_build(5, REFRESH_4 + timedelta(hours=1))
    assert res.success, failures(res)
    distributor = env.query(
        "select * from exigo_history.customer_types_history where customer_type_id = 3 "
        "order by valid_from"
    )
    assert [(r["is_deleted"], r["is_current"]) for r in distributor] == [
        (False, False),
        (True, False),
        (False, True),
    ]
    assert distributor[2]["valid_from"] == REFRESH_4 + timedelta(hours=1)

    # The marts show the names as they are now, from the lookups' current state.
    res = env.invoke("run", "--select", "tag:exigo_marts", batch_id=5, refreshed_at=REFRESH_4)
    assert res.success, failures(res)
    order = env.query("select order_status_id, order_status from exigo_marts.fct_orders")
    assert order == [{"order_status_id": 0, "order_status": "Draft"}]


def test_h9_an_emptied_lookup_deletes_nothing_and_stops_the_batch(merged_env):
    env = merged_env
    load_batch_two(env)
    execute_source(env.source, 'delete from dbo."OrderStatuses"')
    res = env.fast_build(3, REFRESH_3)
    assert not res.success
    message = " ".join(failures(res))
    assert "deletion guard (H9): order_statuses" in message, message
    assert "returned no keys" in message
    live = env.query(
        "select count(*) as n from exigo_current.order_statuses_current where not is_deleted"
    )
    assert live[0]["n"] == len(LOOKUP_TABLES["OrderStatuses"].values)
    # Removing one value is an ordinary edit, not a mass deletion: no share limit for lookups.
    execute_source(
        env.source,
        'insert into dbo."OrderStatuses" values '
        + ", ".join(f"({i}, '{d}')" for i, d in LOOKUP_TABLES["OrderStatuses"].values if i != 10),
    )
    res = env.fast_build(3, REFRESH_3)
    assert res.success, failures(res)
    gone = env.query("select * from exigo_current.order_statuses_current where is_deleted")
    assert [r["order_status_id"] for r in gone] == [10]


def test_b4_a_missing_lookup_table_fails_before_anything_merges(merged_env):
    env = merged_env
    load_batch_two(env)
    execute_source(env.source, 'drop table dbo."PaymentTypes"')
    before = env.query("select count(*) as n from exigo_history.customers_history")
    # The landing looks for every table before copying any: it stops there, naming it.
    with pytest.raises(LandingError, match=r"source table dbo.PaymentTypes is missing \(B4\)"):
        env.fast_build(3, REFRESH_3)
    assert env.query("select count(*) as n from exigo_history.customers_history") == before
    assert env.query(
        "select count(*) as n from exigo_history.order_statuses_history where batch_id = 3"
    ) == [{"n": 0}]
