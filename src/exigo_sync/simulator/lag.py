"""Replication lag: a change made in the back office at time t reaches the sync database's dbo
tables a little later, still carrying ModifiedDate = t.

The activity generator decides *when a change lands* (its time T in the sub-step [t0, t1)); with
a maximum lag L > 0 this module then back-dates every row that landed in the sub-step to the
back-office time t = T - lag, lag in [0, L) drawn by hash. So a row landing just after a
`queue.Refresh` can carry a ModifiedDate from before it: a consumer resuming exactly from that
call misses it, one resuming from the call minus an overlap >= L gets it (contract rule W1).

Two guarantees are kept, set-based:
- a row's ModifiedDate still moves strictly forward across its versions: the back-dated time is
  never at or below the row's ModifiedDate before the sub-step (rows whose previous
  ModifiedDate is recent enough to matter are remembered before the sub-step runs). This holds
  on the simulator's time line: with a local time zone (simulator.clocks) the stamps then
  become local wall time, which a daylight-saving fall-back sets back an hour;
- the rows of one event are back-dated together: the lag is drawn from the landing time and the
  customer or order the row belongs to, so a new customer's account and site, or an accepted
  order and its payment, keep one back-office time. The row's other timestamps set by the same
  change (CreatedDate, OrderDate, ShippedDate, PaymentDate, ...) move with its ModifiedDate.

Within a sub-step the generator still sees landing times (a row changes at most once per
sub-step: ModifiedDate < t0 until the back-dating), and a back-dated time is never later than
its landing time, so the next sub-step's "not changed in this sub-step" test keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import duckdb

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator import clocks, deletions
from exigo_sync.simulator.clocks import EVENT_TIME_COLUMNS
from exigo_sync.simulator.db import dbo_columns, execute, quote, update_rows

# What a row's lag is drawn from besides its landing time: the customer or order it belongs to,
# so every row of one event shares the lag.
_EVENT_KEY = {
    "Customers": "d.CustomerID",
    "CustomerAccounts": "d.CustomerID",
    "CustomerSites": "d.CustomerID",
    "Orders": "d.OrderID",
    "Payments": "coalesce(d.OrderID, -d.PaymentID)",
}

_ONE_US = "INTERVAL 1 MICROSECOND"


def lag_us(lag: timedelta) -> int:
    return lag // timedelta(microseconds=1)


def _lag_expr(time_sql: str, key_sql: str) -> str:
    """`time_sql` moved back by a hashed lag in [0, $lag_us) microseconds."""
    return (
        f"{time_sql} - to_microseconds(floor(rnd($seed, epoch_us({time_sql}), {key_sql}, 'lag')"
        " * $lag_us)::BIGINT)"
    )


def _tables() -> list[str]:
    names = list(clocks.TIMED_TABLES)
    if set(names) != set(_EVENT_KEY):
        raise RuntimeError(f"replication lag does not know every timed table: {names}")
    return names


def _utc_floor(stamp_sql: str, p: Mapping[str, Any]) -> str:
    """A stored stamp on the simulator's (UTC) time line, for the "never at or below the
    previous version" guard: with a local time zone the latest UTC instant that shows it
    (in a fall-back's repeated hour the later one, so the guard still holds)."""
    return clocks.latest_utc_sql(stamp_sql) if p.get("zone") else stamp_sql


def _prev(name: str) -> str:
    return f"_lag_prev_{name}"


def remember_recent(con: duckdb.DuckDBPyConnection, p: Mapping[str, Any]) -> None:
    """Before a sub-step: keep (key, ModifiedDate, its UTC floor) of the rows whose ModifiedDate
    is recent enough (>= t0 - L) that a back-dated change could fall at or below it. With a
    local time zone the stored stamps are local (behind UTC), so the cut is wider."""
    for name in _tables():
        t = REPLICATED_TABLES[name]
        cols = ", ".join(quote(k) for k in (*t.key, "ModifiedDate"))
        floor = clocks.local_stamp_floor(p) if p.get("zone") else clocks.recent_floor(p)
        execute(
            con,
            f"CREATE OR REPLACE TEMP TABLE {_prev(name)} AS SELECT {cols}, "
            f"{_utc_floor('ModifiedDate', p)} AS UtcFloor FROM dbo.{quote(name)} "
            "WHERE ModifiedDate >= $floor",
            {**p, "floor": floor},
        )


def back_date(con: duckdb.DuckDBPyConnection, p: Mapping[str, Any]) -> None:
    """After a sub-step: move every row that landed in it (ModifiedDate >= t0, changed since
    `remember_recent`) back to its back-office time, never at or below its previous
    ModifiedDate nor after its landing time; then the sub-step's physical deletions likewise
    (never at or below the deleted rows' last ModifiedDate). Everything here is on the
    simulator's time line: with a local time zone the stamps are converted afterwards."""
    for name in _tables():
        t = REPLICATED_TABLES[name]
        on = " AND ".join(f"d.{quote(k)} = prev.{quote(k)}" for k in t.key)
        keys = ", ".join(f"d.{quote(k)}" for k in t.key)
        execute(
            con,
            f"""
            CREATE OR REPLACE TEMP TABLE _lag_new AS
            SELECT {keys},
                least(d.ModifiedDate,
                      greatest({_lag_expr("d.ModifiedDate", _EVENT_KEY[name])},
                               prev.UtcFloor + {_ONE_US})) AS NewModifiedDate
            FROM dbo.{quote(name)} d LEFT JOIN {_prev(name)} prev ON {on}
            WHERE d.ModifiedDate >= $t0
              AND (prev.ModifiedDate IS NULL OR d.ModifiedDate <> prev.ModifiedDate)
            """,
            p,
        )
        present = set(dbo_columns(con, name, p))
        sets = {
            col: f"CASE WHEN r.{quote(col)} = r.ModifiedDate THEN x.NewModifiedDate "
            f"ELSE r.{quote(col)} END"
            for col in EVENT_TIME_COLUMNS[name]
            if col in present
        }
        sets["ModifiedDate"] = "x.NewModifiedDate"
        match = " AND ".join(f"r.{quote(k)} = x.{quote(k)}" for k in t.key)
        update_rows(con, name, "r", sets, f"FROM _lag_new x WHERE {match}", p)

    # A removed line's time is its order's change (the bump), back-dated above.
    execute(
        con,
        f"UPDATE {deletions.archive('OrderDetails')} AS r SET DeletedAt = o.ModifiedDate "
        "FROM dbo.Orders o WHERE r.OrderID = o.OrderID AND r.Cause = $cause "
        "AND r.DeletedAt >= $t0 AND r.RestoredAt IS NULL",
        {**p, "cause": deletions.LINE_REMOVED},
    )
    for table, cause in _DELETION_EVENTS:
        _back_date_deletions(con, p, table, cause)


# Physical deletions that are events of their own: (table, cause). The rows deleted with them
# (CASCADES: a purged customer's account and site, a deleted order's lines) take their time.
_DELETION_EVENTS = (
    ("Customers", deletions.CUSTOMER_PURGED),
    ("Orders", deletions.ORDER_DELETED),
    ("Payments", deletions.PAYMENT_DELETED),
    ("CustomerAccounts", deletions.ACCOUNT_DELETED),
    ("CustomerSites", deletions.SITE_DELETED),
)


def _back_date_deletions(
    con: duckdb.DuckDBPyConnection, p: Mapping[str, Any], table: str, cause: str
) -> None:
    """The sub-step's `cause` deletions of dbo.<table> rows move back by the lag of their
    event (the same draw as the row's other events: _EVENT_KEY), but stay after the last
    change of every row the event deleted (and never after the deletion's landing time); the
    rows deleted with them follow."""
    key = REPLICATED_TABLES[table].key[0]  # every deletion event has a one-column key
    children = [
        (child, column)
        for child, column, child_cause in deletions.CASCADES.get(table, ())
        if child_cause == cause
    ]
    joins, floors = [], [f"{_utc_floor('a.ModifiedDate', p)} + {_ONE_US}"]
    for i, (child, column) in enumerate(children):
        joins.append(
            f"LEFT JOIN {deletions.archive(child)} c{i} ON c{i}.{quote(column)} = "
            f"a.{quote(column)} AND c{i}.DeletedAt = a.DeletedAt AND c{i}.Cause = a.Cause "
            f"AND c{i}.RestoredAt IS NULL"
        )
        if REPLICATED_TABLES[child].version_time_column is not None:
            floors.append(f"max({_utc_floor(f'c{i}.ModifiedDate', p)}) + {_ONE_US}")
    event_key = _EVENT_KEY[table].replace("d.", "a.")
    execute(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE _lag_del AS
        SELECT a.{quote(key)} AS EventKey, a.DeletedAt AS OldAt,
            least(a.DeletedAt, greatest({_lag_expr("a.DeletedAt", event_key)}, {", ".join(floors)}))
                AS NewAt
        FROM {deletions.archive(table)} a {" ".join(joins)}
        WHERE a.Cause = $cause AND a.DeletedAt >= $t0 AND a.RestoredAt IS NULL
        GROUP BY a.{quote(key)}, a.DeletedAt, a.ModifiedDate, {event_key}
        """,
        {**p, "cause": cause},
    )
    for target, column in ((table, key), *children):
        execute(
            con,
            f"UPDATE {deletions.archive(target)} AS r SET DeletedAt = x.NewAt FROM _lag_del x "
            f"WHERE r.{quote(column)} = x.EventKey AND r.DeletedAt = x.OldAt "
            "AND r.Cause = $cause AND r.RestoredAt IS NULL",
            {**p, "cause": cause},
        )
