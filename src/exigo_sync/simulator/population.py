"""The base population written by `SyncSimulator.create`: customers in an enroller/sponsor tree,
their orders (status by age), lines, payments, card/bank accounts and distributor sites, all
dated within `history_days` before the clock start. Every statement is set-based."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from exigo_sync.simulator import generate
from exigo_sync.simulator.db import execute, scalar

# Customer ids are handed out in creation order, so an enroller (an earlier customer) always
# exists before the customers it enrols.
_BASE_CUSTOMERS = """
CREATE OR REPLACE TEMP TABLE _nc AS
WITH ids AS (
    SELECT (range + 1)::INTEGER AS CustomerID FROM range($n_customers)
), dated AS (
    SELECT CustomerID,
        $start + to_microseconds(floor(
            (CustomerID - 1 + rnd($seed, 0, CustomerID, 'created')) / $n_customers * $span_us
        )::BIGINT) AS CreatedDate
    FROM ids
)
SELECT CustomerID, CreatedDate,
    -- about a third were edited after sign-up, at some time before the clock start
    CASE WHEN rnd($seed, 0, CustomerID, 'edited') < 0.35
         THEN CreatedDate + to_microseconds(floor(rnd($seed, 0, CustomerID, 'edited_at')
              * (epoch_us($clock) - epoch_us(CreatedDate)))::BIGINT)
         ELSE CreatedDate END AS ModifiedDate,
    CASE WHEN CustomerID > 1
         THEN (1 + rint($seed, 0, CustomerID, 'enroller', CustomerID - 1))::INTEGER END
        AS EnrollerID,
    CASE WHEN CustomerID = 1 THEN NULL
         WHEN rnd($seed, 0, CustomerID, 'sponsor_is_enroller') < 0.7
         THEN (1 + rint($seed, 0, CustomerID, 'enroller', CustomerID - 1))::INTEGER
         ELSE (1 + rint($seed, 0, CustomerID, 'sponsor', CustomerID - 1))::INTEGER END
        AS SponsorID,
    CASE WHEN CustomerID = 1 THEN 3
         WHEN rnd($seed, 0, CustomerID, 'type') < 0.55 THEN 1
         WHEN rnd($seed, 0, CustomerID, 'type') < 0.75 THEN 2 ELSE 3 END AS CustomerTypeID,
    CASE WHEN CustomerID = 1 THEN 1
         WHEN rnd($seed, 0, CustomerID, 'status') < 0.02 THEN 0
         WHEN rnd($seed, 0, CustomerID, 'status') < 0.07 THEN 2
         WHEN rnd($seed, 0, CustomerID, 'status') < 0.08 THEN 3 ELSE 1 END AS CustomerStatusID
FROM dated
"""

# Orders are numbered in date order (like an identity column). Each order's life-cycle uses the
# same hashed waits and outcomes as activity._progress_orders (activity.lifecycle_params), so its
# status is simply the last stage reached before the clock start and the first advance carries
# on where the history stops, instead of releasing a backlog.
_BASE_ORDERS = """
CREATE OR REPLACE TEMP TABLE _no AS
WITH drawn AS (
    -- Order times are uniform over the history (a steady order flow); each order goes to a
    -- customer who already existed then (ids are in creation order, so a prefix of them).
    SELECT range AS seq,
        $start + to_microseconds(floor(rnd($seed, 0, range, 'order_at') * $span_us)::BIGINT) AS t
    FROM range($n_orders)
), raw AS (
    SELECT d.seq, c.CustomerID,
        CASE WHEN c.CreatedDate < d.t THEN d.t
             -- the customer's own sign-up jitter can pass t: order soon after signing up
             ELSE c.CreatedDate + to_microseconds(floor(rnd($seed, 0, d.seq, 'order_at2')
                  * least(epoch_us($clock) - epoch_us(c.CreatedDate), 3600e6))::BIGINT)
             END AS OrderDate
    FROM drawn d
    JOIN _nc c ON c.CustomerID = 1 + least(
        floor(rnd($seed, 0, d.seq, 'order_customer') * $n_customers
              * (epoch_us(d.t) - epoch_us($start)) / $span_us),
        $n_customers - 1)::INTEGER
), numbered AS (
    SELECT (row_number() OVER (ORDER BY OrderDate, seq))::INTEGER AS OrderID, CustomerID,
           OrderDate
    FROM raw
), timeline AS (
    SELECT *,
        OrderDate + to_microseconds(floor($lo_a + ($hi_a - $lo_a)
            * rnd($seed, 1, OrderID, 'wait1'))::BIGINT) AS AcceptedAt,
        rnd($seed, 1, OrderID, 'decline') < $decline AS Declines,
        rnd($seed, 7, OrderID, 'cancel') < $cancel AS Cancels
    FROM numbered
), timeline2 AS (
    SELECT *, AcceptedAt + to_microseconds(floor($lo_p + ($hi_p - $lo_p)
            * rnd($seed, 7, OrderID, 'wait7'))::BIGINT) AS PrintedAt
    FROM timeline
), timeline3 AS (
    SELECT *, PrintedAt + to_microseconds(floor($lo_s + ($hi_s - $lo_s)
            * rnd($seed, 8, OrderID, 'wait8'))::BIGINT) AS ShippedAt
    FROM timeline2
), staged AS (
    SELECT *,
        CASE WHEN AcceptedAt >= $clock THEN 1
             WHEN Declines THEN 2
             WHEN PrintedAt >= $clock THEN 7
             WHEN Cancels THEN 4
             WHEN ShippedAt >= $clock THEN 8
             ELSE 9 END AS OrderStatusID
    FROM timeline3
)
SELECT OrderID, CustomerID, OrderDate, OrderStatusID,
    CASE WHEN rnd($seed, 0, OrderID, 'otype') < 0.6 THEN 2
         WHEN rnd($seed, 0, OrderID, 'otype') < 0.85 THEN 4
         WHEN rnd($seed, 0, OrderID, 'otype') < 0.95 THEN 3 ELSE 11 END AS OrderTypeID,
    false AS IsRMA, NULL::INTEGER AS ParentOrderID,
    CASE WHEN OrderStatusID = 9 THEN ShippedAt END AS ShippedDate,
    CASE OrderStatusID WHEN 1 THEN OrderDate WHEN 2 THEN AcceptedAt WHEN 7 THEN AcceptedAt
         WHEN 4 THEN PrintedAt WHEN 8 THEN PrintedAt ELSE ShippedAt END AS ModifiedDate,
    AcceptedAt
FROM staged
"""

LINES_FOR_ORDERS = """
CREATE OR REPLACE TEMP TABLE _nl AS
SELECT o.OrderID, l.OrderLine::INTEGER AS OrderLine,
    rint($seed, $step, o.OrderID * 8 + l.OrderLine, 'item', $n_items)::INTEGER AS ItemIdx,
    (1 + (rnd($seed, $step, o.OrderID * 8 + l.OrderLine, 'qty') < 0.2)::INTEGER
       + (rnd($seed, $step, o.OrderID * 8 + l.OrderLine, 'qty') < 0.05)::INTEGER) AS Quantity,
    1 AS Sign
FROM _no o
JOIN (SELECT range AS OrderLine FROM range(1, 6)) l
  ON l.OrderLine <= CASE WHEN rnd($seed, $step, o.OrderID, 'n_lines') < 0.45 THEN 1
                         WHEN rnd($seed, $step, o.OrderID, 'n_lines') < 0.75 THEN 2
                         WHEN rnd($seed, $step, o.OrderID, 'n_lines') < 0.90 THEN 3
                         WHEN rnd($seed, $step, o.OrderID, 'n_lines') < 0.97 THEN 4
                         ELSE 5 END
"""

_BASE_PAYMENTS = """
CREATE OR REPLACE TEMP TABLE _np AS
SELECT (row_number() OVER (ORDER BY AcceptedAt, OrderID))::INTEGER AS PaymentID, OrderID,
       AcceptedAt AS PaymentDate
FROM _no WHERE OrderStatusID IN (4, 7, 8, 9)
"""


def populate(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, int]:
    """Write the base population; returns the next free ids."""
    execute(con, _BASE_CUSTOMERS, params)
    generate.insert_customers(con, params)
    execute(con, _BASE_ORDERS, params)
    execute(con, LINES_FOR_ORDERS, params)
    generate.insert_orders(con, params)
    execute(con, _BASE_PAYMENTS, params)
    generate.insert_payments(con, params)
    max_order = scalar(con, "SELECT coalesce(max(OrderID), 0) FROM _no")
    max_payment = scalar(con, "SELECT coalesce(max(PaymentID), 0) FROM _np")
    for t in ("_nc", "_no", "_nl", "_np"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return {
        "next_customer_id": int(params["n_customers"]) + 1,
        "next_order_id": int(max_order) + 1,
        "next_payment_id": int(max_payment) + 1,
    }
