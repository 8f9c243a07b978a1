"""A small hand-made batch sequence over the fixture source (no simulator needed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.dbt.helpers import DbtEnv, create_source, default_row, failures, put_rows

T0 = datetime(2026, 1, 5, 8, 0, 0)


def load_batch_one(env: DbtEnv) -> None:
    """Two customers, one order with two lines, one payment (in the queue and in dbo)."""
    put_rows(
        env.source,
        "queue",
        "Customers",
        [
            default_row(
                "Customers", CustomerID=1, FirstName="Ann", ModifiedDate=T0, TaxCode="123-45-6789"
            ),
            default_row("Customers", CustomerID=2, FirstName="Bob", ModifiedDate=T0),
        ],
    )
    put_rows(env.source, "queue", "Orders", [default_row("Orders", OrderID=10, ModifiedDate=T0)])
    put_rows(
        env.source,
        "queue",
        "OrderDetails",
        [
            default_row("OrderDetails", OrderID=10, OrderLine=1, ItemCode="A"),
            default_row("OrderDetails", OrderID=10, OrderLine=2, ItemCode="B"),
        ],
    )
    payment = default_row("Payments", PaymentID=5, ModifiedDate=T0)
    put_rows(env.source, "queue", "Payments", [payment])
    put_rows(env.source, "dbo", "Payments", [payment])
    put_rows(
        env.source,
        "queue",
        "CustomerAccounts",
        [
            default_row(
                "CustomerAccounts",
                CustomerID=1,
                ModifiedDate=T0,
                Iban="DE89370400440532013000",
                CreditCardToken="tok_secret",
            ),
        ],
    )
    put_rows(
        env.source,
        "queue",
        "CustomerSites",
        [
            default_row("CustomerSites", CustomerID=1, ModifiedDate=T0, WebAlias="ann"),
        ],
    )


# Batch two deletes the only payment: the source's dbo.Payments reads empty, which the deletion
# guard (H9) refuses unless an operator confirms it. This tiny fixture confirms it, as the
# operator would (`exigo-sync run --confirm-deletions payments`).
CONFIRM_PAYMENT_DELETION = {"exigo_confirm_deletions": ["payments"]}


def load_batch_two(env: DbtEnv) -> None:
    """Customer 1 changes; the order loses line 2; the payment is deleted at the source (build
    it with extra_vars=CONFIRM_PAYMENT_DELETION)."""
    t1 = T0 + timedelta(hours=2)
    put_rows(
        env.source,
        "queue",
        "Customers",
        [
            default_row(
                "Customers", CustomerID=1, FirstName="Anna", ModifiedDate=t1, TaxCode="123-45-6789"
            ),
        ],
    )
    put_rows(env.source, "queue", "Orders", [default_row("Orders", OrderID=10, ModifiedDate=t1)])
    put_rows(
        env.source,
        "queue",
        "OrderDetails",
        [
            default_row("OrderDetails", OrderID=10, OrderLine=1, ItemCode="A"),
        ],
    )
    put_rows(env.source, "queue", "Payments", [])
    put_rows(env.source, "dbo", "Payments", [])
    put_rows(env.source, "queue", "CustomerAccounts", [])
    put_rows(env.source, "queue", "CustomerSites", [])


def two_batch_warehouse(root: Path) -> Path:
    """Warehouse + source files under `root` after batches 1 and 2 (the payment's deletion
    confirmed): the state the dbt and docs tests copy (fixture `two_batch_template`)."""
    env = DbtEnv(root)
    create_source(env.source)
    load_batch_one(env)
    res = env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    load_batch_two(env)
    res = env.fast_build(2, T0 + timedelta(hours=3), extra_vars=CONFIRM_PAYMENT_DELETION)
    assert res.success, failures(res)
    return env.tmp


def history_snapshot(env: DbtEnv) -> dict[str, list[tuple]]:
    """Every history and current table's rows (sorted), to prove something did not change."""
    out = {}
    for layer in ("history", "current"):
        for entity in (
            "customers",
            "orders",
            "order_details",
            "payments",
            "customer_accounts",
            "customer_sites",
        ):
            name = f"exigo_{layer}.{entity}_{layer}"
            rows = env.query(f"select * from {name}")
            out[name] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return out
