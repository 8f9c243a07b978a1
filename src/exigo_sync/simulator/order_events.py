"""Order activity: new orders, the status pipeline, returns, line edits and removals, and
orders and payments deleted at the source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from exigo_sync.simulator import clocks, deletions, generate
from exigo_sync.simulator.db import execute, update_rows
from exigo_sync.simulator.population import LINES_FOR_ORDERS
from exigo_sync.simulator.rates import ActivityRates, ActivitySummary, lifecycle_params
from exigo_sync.simulator.sampling import count_rows, event_count, pick


def new_orders(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    k = event_count(con, p, "new_orders", rates.new_orders)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_buyers",
        "SELECT CustomerID FROM dbo.Customers WHERE CustomerStatusID = 1 AND CreatedDate < $t0",
        "CustomerID",
        k,
    )
    if n == 0:
        return
    # New orders start Pending; ids follow order time, like an identity column.
    execute(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _no AS
        SELECT ($next_order_id - 1 + row_number() OVER (ORDER BY T, CustomerID))::INTEGER
                AS OrderID,
            CustomerID, T AS OrderDate, 1 AS OrderStatusID,
            CASE WHEN rnd($seed, $step, CustomerID, 'otype') < 0.6 THEN 2
                 WHEN rnd($seed, $step, CustomerID, 'otype') < 0.85 THEN 4
                 WHEN rnd($seed, $step, CustomerID, 'otype') < 0.95 THEN 3 ELSE 11 END
                AS OrderTypeID,
            false AS IsRMA, NULL::INTEGER AS ParentOrderID, NULL::TIMESTAMP AS ShippedDate,
            T AS ModifiedDate
        FROM _buyers
        """,
        p,
    )
    execute(con, LINES_FOR_ORDERS, p)
    summary.add("new_order_lines", count_rows(con, "SELECT count(*) FROM _nl"))
    generate.insert_orders(con, p)
    p["next_order_id"] += n
    summary.add("new_orders", n)


def progress_orders(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """Pending -> Accepted (payment taken) or CCDeclined; Accepted -> Printed or Cancelled;
    Printed -> Shipped. Each order waits a hashed delay in its status, so the pipeline moves
    on its own at any scale. The wait runs on the simulator's clock: with a local time zone
    the order's local ModifiedDate is read back as UTC (else every order would look hours
    overdue)."""
    since = clocks.to_utc_sql("ModifiedDate") if p.get("zone") else "ModifiedDate"
    execute(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE _prog AS
        WITH due AS (
            SELECT OrderID, OrderStatusID AS OldStatus,
                {since} + to_microseconds(floor(CASE OrderStatusID
                    WHEN 1 THEN $lo_a + ($hi_a - $lo_a) * rnd($seed, 1, OrderID, 'wait1')
                    WHEN 7 THEN $lo_p + ($hi_p - $lo_p) * rnd($seed, 7, OrderID, 'wait7')
                    ELSE $lo_s + ($hi_s - $lo_s) * rnd($seed, 8, OrderID, 'wait8') END)::BIGINT)
                    AS DueAt
            FROM dbo.Orders
            WHERE OrderStatusID IN (1, 7, 8) AND OrderTypeID <> 8 AND ModifiedDate < $t0
        )
        SELECT OrderID, OldStatus,
            CASE OldStatus
                WHEN 1 THEN CASE WHEN rnd($seed, 1, OrderID, 'decline') < $decline THEN 2 ELSE 7 END
                WHEN 7 THEN CASE WHEN rnd($seed, 7, OrderID, 'cancel') < $cancel THEN 4 ELSE 8 END
                ELSE 9 END AS NewStatus,
            greatest(DueAt, $t0) AS T
        FROM due
        WHERE DueAt < $t0 + to_microseconds($span_us::BIGINT)
        """,
        {**p, **lifecycle_params(rates)},
    )
    update_rows(
        con,
        "Orders",
        "o",
        {
            "OrderStatusID": "g.NewStatus",
            "DeclineCount": "o.DeclineCount + CASE WHEN g.NewStatus = 2 THEN 1 ELSE 0 END",
            "ShippedDate": "CASE WHEN g.NewStatus = 9 THEN g.T ELSE o.ShippedDate END",
            "TrackingNumber1": "CASE WHEN g.NewStatus = 9 THEN '1Z' || "
            "upper(substr(md5('trk:' || o.OrderID::VARCHAR), 1, 16)) ELSE o.TrackingNumber1 END",
            "ModifiedBy": "'System'",
            "ModifiedDate": "g.T",
        },
        "FROM _prog g WHERE o.OrderID = g.OrderID",
        p,
    )
    for kind, status in (
        ("orders_accepted", 7),
        ("orders_declined", 2),
        ("orders_cancelled", 4),
        ("orders_printed", 8),
        ("orders_shipped", 9),
    ):
        summary.add(kind, count_rows(con, f"SELECT count(*) FROM _prog WHERE NewStatus = {status}"))
    execute(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _np AS
        SELECT ($next_payment_id - 1 + row_number() OVER (ORDER BY T, OrderID))::INTEGER
                AS PaymentID, OrderID, T AS PaymentDate
        FROM _prog WHERE NewStatus = 7
        """,
        p,
    )
    n = generate.insert_payments(con, p)
    p["next_payment_id"] += n
    summary.add("payments_created", n)


def returns(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """A shipped order comes back: a new ReturnOrder (type 8, IsRMA) with the lines negated,
    linked both ways (original.ReturnOrderID, return.ParentOrderID)."""
    k = event_count(con, p, "returns", rates.returns)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_ret",
        "SELECT OrderID, CustomerID FROM dbo.Orders WHERE OrderStatusID = 9 AND OrderTypeID <> 8 "
        "AND ReturnOrderID IS NULL AND ModifiedDate < $t0",
        "OrderID",
        k,
    )
    if n == 0:
        return
    execute(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _no AS
        SELECT ($next_order_id - 1 + row_number() OVER (ORDER BY T, OrderID))::INTEGER
                AS OrderID,
            CustomerID, T AS OrderDate, 7 AS OrderStatusID, 8 AS OrderTypeID, true AS IsRMA,
            OrderID AS ParentOrderID, NULL::TIMESTAMP AS ShippedDate, T AS ModifiedDate
        FROM _ret
        """,
        p,
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _nl AS
        SELECT n.OrderID, d.OrderLine, (d.ItemID - 1001)::INTEGER AS ItemIdx,
               abs(d.Quantity) AS Quantity, -1 AS Sign
        FROM _no n JOIN dbo.OrderDetails d ON d.OrderID = n.ParentOrderID
        JOIN sim.Items i ON i.ItemID = d.ItemID
        """
    )
    generate.insert_orders(con, p)
    update_rows(
        con,
        "Orders",
        "o",
        {"ReturnOrderID": "n.OrderID", "ModifiedBy": "'System'", "ModifiedDate": "n.ModifiedDate"},
        "FROM _no n WHERE o.OrderID = n.ParentOrderID",
        p,
    )
    p["next_order_id"] += n
    summary.add("returns", n)


_OPEN_ORDERS = (
    "SELECT OrderID FROM dbo.Orders WHERE OrderStatusID IN (1, 7) AND OrderTypeID <> 8 "
    "AND ModifiedDate < $t0"
)


def line_edits(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """One line of an open order changes quantity; OrderDetails has no timestamp, so the
    change is only visible through the parent order's ModifiedDate, which it bumps."""
    k = event_count(con, p, "line_edits", rates.line_edits)
    if k == 0 or pick(con, p, "_edit", _OPEN_ORDERS, "OrderID", k) == 0:
        return
    execute(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _edit_lines AS
        SELECT e.OrderID,
            arg_min(d.OrderLine, mix($seed, $step, d.OrderID * 8 + d.OrderLine, 'edit_line'))
                AS OrderLine
        FROM _edit e JOIN dbo.OrderDetails d USING (OrderID) GROUP BY e.OrderID
        """,
        p,
    )
    update_rows(
        con,
        "OrderDetails",
        "d",
        {
            "Quantity": "d.Quantity + 1",
            "PriceTotal": "(d.Quantity + 1) * d.PriceEach",
            "Taxable": "(d.Quantity + 1) * d.PriceEach",
            "Tax": "round((d.Quantity + 1) * d.PriceEach * 0.0725, 2)",
            "StateTax": "round((d.Quantity + 1) * d.PriceEach * 0.0725, 2)",
            "Weight": "(d.Quantity + 1) * d.WeightEach",
            "BusinessVolume": "(d.Quantity + 1) * d.BusinessVolumeEach",
            "CommissionableVolume": "(d.Quantity + 1) * d.CommissionableVolumeEach",
        },
        "FROM _edit_lines e WHERE d.OrderID = e.OrderID AND d.OrderLine = e.OrderLine",
        p,
    )
    _bump_orders(con, "_edit", p)
    summary.add("line_edits", count_rows(con, "SELECT count(*) FROM _edit_lines"))


def line_removals(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """A line is deleted from an open order with two or more lines; the order's ModifiedDate
    moves, the removed line is simply absent from the next snapshot."""
    k = event_count(con, p, "line_removals", rates.line_removals)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_rm",
        _OPEN_ORDERS + " AND OrderID IN (SELECT OrderID FROM dbo.OrderDetails GROUP BY OrderID "
        "HAVING count(*) >= 2)",
        "OrderID",
        k,
    )
    if n == 0:
        return
    execute(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _rm_lines AS
        SELECT r.OrderID,
            arg_min(d.OrderLine, mix($seed, $step, d.OrderID * 8 + d.OrderLine, 'rm_line'))
                AS OrderLine,
            any_value(r.T) AS T
        FROM _rm r JOIN dbo.OrderDetails d USING (OrderID) GROUP BY r.OrderID
        """,
        p,
    )
    deletions.delete_rows(
        con, "OrderDetails", "_rm_lines", ("OrderID", "OrderLine"), deletions.LINE_REMOVED
    )
    _bump_orders(con, "_rm", p)
    summary.add("line_removals", n)


def _bump_orders(con: duckdb.DuckDBPyConnection, picked: str, p: Mapping[str, Any]) -> None:
    generate.recompute_order_totals(con, picked, p)
    update_rows(
        con,
        "Orders",
        "o",
        {"ModifiedBy": "'Web'", "ModifiedDate": "x.T"},
        f"FROM {picked} x WHERE o.OrderID = x.OrderID",
        p,
    )


def payment_deletes(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """Payments physically deleted at the source: nothing in any queue will ever say so."""
    k = event_count(con, p, "payment_deletes", rates.payment_deletes)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_pdel",
        "SELECT PaymentID, OrderID, CustomerID FROM dbo.Payments WHERE ModifiedDate < $t0",
        "PaymentID",
        k,
    )
    deletions.delete_rows(con, "Payments", "_pdel", ("PaymentID",), deletions.PAYMENT_DELETED)
    summary.add("payments_deleted", n)


def order_deletes(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """An unpaid order (still Pending, or declined) deleted in the back office, with all its
    lines. Paid orders are cancelled instead (status 4), and returns and returned orders keep
    their links, so no payment or order is left pointing at a deleted order."""
    k = event_count(con, p, "order_deletes", rates.order_deletes)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_odel",
        # Payments are only probed for the candidates (SEMI JOIN hashes the small side).
        """
        WITH unpaid AS (
            SELECT OrderID FROM dbo.Orders
            WHERE OrderStatusID IN (1, 2) AND OrderTypeID <> 8 AND ReturnOrderID IS NULL
              AND ModifiedDate < $t0
        )
        SELECT OrderID FROM unpaid ANTI JOIN (
            SELECT y.OrderID FROM dbo.Payments y SEMI JOIN unpaid USING (OrderID)
        ) p USING (OrderID)
        """,
        "OrderID",
        k,
    )
    if n == 0:
        return
    deletions.delete_rows(con, "OrderDetails", "_odel", ("OrderID",), deletions.ORDER_DELETED)
    deletions.delete_rows(con, "Orders", "_odel", ("OrderID",), deletions.ORDER_DELETED)
    summary.add("orders_deleted", n)
