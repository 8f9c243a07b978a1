"""Physical deletions at the source: the bookkeeping every kind shares, and resurrection.

A physically deleted row simply vanishes from dbo. Nothing else moves (no ModifiedDate, no
parent), so no `queue.Refresh` can ever show it: only a key reconciliation against dbo can.
The simulator keeps every deleted row exactly as it was in `sim.Deleted<Table>` (every dbo
column, all nullable, plus DeletedAt on the data's clock like ModifiedDate, Cause, and
RestoredAt on the server clock once a test brings it back: see simulator.clocks). That archive
is what the truth API reads and what `restore_deleted` restores.

What gets deleted, and why only that (an inference: Exigo documents no physical deletion; its
API removes customers by status (TerminateCustomer, CustomerStatusID 0 = Deleted) and orders by
status (ChangeOrderStatus), so physical deletions are back-office clean-ups, and a database
with foreign keys only lets them remove rows nothing else refers to):

- a customer row (Cause `customer_purged`): a duplicate or test sign-up nobody depends on, with
  no order, no payment and nobody enrolled or sponsored by it. Its CustomerAccounts and
  CustomerSites rows (1:1, keyed by CustomerID) go with it, same Cause and DeletedAt. Orders
  are never cascaded: a customer with history gets status 0 instead (Exigo's soft delete,
  which the simulator already does), so a purge never orphans an order or a payment;
- an order (`order_deleted`): an unpaid one, still Pending or declined, with no payment, not a
  return and not returned; all its lines go with it (same Cause and DeletedAt);
- an order line (`line_removed`): taken off an open order, which is bumped (ModifiedDate);
- a payment (`payment_deleted`): its order stays;
- a CustomerAccounts row (`account_deleted`): every card and bank account removed; the
  customer stays;
- a CustomerSites row (`site_deleted`): the replicated site taken down; the customer stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import duckdb

from exigo_sync.catalog import REPLICATED_TABLES, duckdb_type
from exigo_sync.simulator.db import quote, table_columns

LINE_REMOVED = "line_removed"
ORDER_DELETED = "order_deleted"
PAYMENT_DELETED = "payment_deleted"
CUSTOMER_PURGED = "customer_purged"
ACCOUNT_DELETED = "account_deleted"
SITE_DELETED = "site_deleted"

# The archive's own columns, after the dbo ones.
BOOKKEEPING_COLUMNS = ("DeletedAt", "Cause", "RestoredAt")

# Rows deleted together with a parent row by one event: restoring the parent brings them back
# (a customer with its account and site, an order with its lines).
CASCADES: dict[str, tuple[tuple[str, str, str], ...]] = {
    # parent table: (child table, join column, cause)
    "Customers": (
        ("CustomerAccounts", "CustomerID", CUSTOMER_PURGED),
        ("CustomerSites", "CustomerID", CUSTOMER_PURGED),
    ),
    "Orders": (("OrderDetails", "OrderID", ORDER_DELETED),),
}

# What must exist in dbo for a row to come back without orphaning it: (column, parent table,
# parent key). A NULL column needs no parent.
PARENTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Customers": (
        ("EnrollerID", "Customers", "CustomerID"),
        ("SponsorID", "Customers", "CustomerID"),
    ),
    "Orders": (("CustomerID", "Customers", "CustomerID"),),
    "OrderDetails": (("OrderID", "Orders", "OrderID"),),
    "Payments": (
        ("CustomerID", "Customers", "CustomerID"),
        ("OrderID", "Orders", "OrderID"),
    ),
    "CustomerAccounts": (("CustomerID", "Customers", "CustomerID"),),
    "CustomerSites": (("CustomerID", "Customers", "CustomerID"),),
}


class RestoreError(ValueError):
    """A restore that cannot be done as asked (key not deleted, parent missing)."""


def archive(table: str) -> str:
    """The archive of dbo.<table>'s deleted rows."""
    return f"sim.{quote('Deleted' + table)}"


def create_archives(con: duckdb.DuckDBPyConnection) -> None:
    """One archive per replicated table. Every column is nullable: a column a schema-evolution
    test drops from dbo stays in the archive (old rows keep their value, later ones hold NULL)."""
    for table in REPLICATED_TABLES.values():
        cols = [f"{quote(c.name)} {duckdb_type(c.sql_type)}" for c in table.columns]
        cols += ["DeletedAt TIMESTAMP NOT NULL", "Cause VARCHAR NOT NULL", "RestoredAt TIMESTAMP"]
        con.execute(f"CREATE TABLE {archive(table.name)} ({', '.join(cols)})")
    # The order lines removed from their orders, under the name (and column) they always had.
    con.execute(
        f"CREATE VIEW sim.RemovedOrderLines AS SELECT OrderID, OrderLine, DeletedAt AS RemovedAt "
        f"FROM {archive('OrderDetails')} WHERE Cause = '{LINE_REMOVED}'"
    )


def delete_rows(
    con: duckdb.DuckDBPyConnection, table: str, picked: str, on: Sequence[str], cause: str
) -> int:
    """Move the dbo.<table> rows matching temp table `picked` on columns `on` into the archive,
    each deleted at its event's time `picked.T`; returns how many rows were deleted."""
    match = " AND ".join(f"d.{quote(c)} = x.{quote(c)}" for c in on)
    con.execute(
        f"INSERT INTO {archive(table)} BY NAME "
        f"SELECT d.*, x.T AS DeletedAt, ? AS Cause FROM dbo.{quote(table)} d JOIN {picked} x "
        f"ON {match}",
        [cause],
    )
    row = con.execute(f"DELETE FROM dbo.{quote(table)} d USING {picked} x WHERE {match}").fetchone()
    return int(row[0]) if row else 0


def key_of(table: str, row: Sequence[Any]) -> Any:
    """A key as the truth API returns it: the value for a one-column key, else a tuple."""
    return row[0] if len(REPLICATED_TABLES[table].key) == 1 else tuple(row)


def _normalise_keys(table: str, keys: Iterable[Any]) -> list[tuple[Any, ...]]:
    width = len(REPLICATED_TABLES[table].key)
    out = []
    for k in keys:
        t = tuple(k) if isinstance(k, (tuple, list)) else (k,)
        if len(t) != width:
            raise RestoreError(f"a {table} key has {width} column(s): {k!r}")
        out.append(t)
    return out


def restore(
    con: duckdb.DuckDBPyConnection,
    table: str,
    n: int | None,
    keys: Iterable[Any] | None,
    now: datetime,
) -> list[Any]:
    """Put deleted rows of dbo.<table> back exactly as they were (old ModifiedDate included),
    with the rows their deletion took along (CASCADES); returns the restored keys.

    `keys`: these keys, each deleted now and with its parents in dbo (else RestoreError);
    `n`: the n keys deleted longest ago (ties by key) among those that can come back."""
    t = REPLICATED_TABLES[table]
    key_cols = ", ".join(f"a.{quote(k)}" for k in t.key)
    orphan_checks = " AND ".join(
        f"(a.{quote(col)} IS NULL OR a.{quote(col)} IN "
        f"(SELECT {quote(pkey)} FROM dbo.{quote(parent)}))"
        for col, parent, pkey in PARENTS[table]
    )
    # Still deleted (its newest archive row is not restored) and its parents are back in dbo.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _restorable AS
        SELECT {key_cols}, a.DeletedAt FROM {archive(table)} a
        WHERE a.RestoredAt IS NULL AND {orphan_checks}
        """
    )
    width = len(t.key)
    if keys is not None:
        wanted = _normalise_keys(table, keys)
        if not wanted:
            return []
        cols = ", ".join(quote(k) for k in t.key)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _wanted ({_key_ddl(table)})")
        con.executemany(f"INSERT INTO _wanted VALUES ({', '.join('?' * width)})", wanted)
        missing = con.execute(
            f"SELECT {cols} FROM _wanted EXCEPT SELECT {cols} FROM _restorable ORDER BY ALL"
        ).fetchall()
        if missing:
            shown = ", ".join(str(key_of(table, m)) for m in missing[:10])
            raise RestoreError(
                f"cannot restore {table} {shown}: not deleted now, or a row it refers to "
                "(customer, order, enroller, sponsor) is not in dbo"
            )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _restore AS SELECT DISTINCT {cols} FROM _wanted")
    else:
        if n is None or n < 0:
            raise RestoreError(f"give a number of keys (at least 0) or the keys, not n={n!r}")
        order = ", ".join(quote(k) for k in t.key)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _restore AS SELECT {order} FROM _restorable "
            f"ORDER BY DeletedAt, {order} LIMIT {int(n)}"
        )
    restored = con.execute(
        f"SELECT * FROM _restore ORDER BY {', '.join(quote(k) for k in t.key)}"
    ).fetchall()
    if not restored:
        return []
    # The children deleted by the same event, before their parents lose the RestoredAt NULL.
    for child, column, cause in CASCADES.get(table, ()):
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _restore_child AS
            SELECT c.* EXCLUDE (DeletedAt, Cause, RestoredAt), c.DeletedAt AS _DeletedAt
            FROM {archive(child)} c JOIN {archive(table)} a
              ON c.{quote(column)} = a.{quote(column)} AND c.DeletedAt = a.DeletedAt
             AND c.Cause = a.Cause
            JOIN _restore r ON r.{quote(column)} = a.{quote(column)}
            WHERE a.RestoredAt IS NULL AND c.RestoredAt IS NULL AND c.Cause = ?
            """,
            [cause],
        )
        _put_back(con, child, "_restore_child", "_DeletedAt", now)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _restore_rows AS
        SELECT a.* EXCLUDE (DeletedAt, Cause, RestoredAt), a.DeletedAt AS _DeletedAt
        FROM {archive(table)} a JOIN _restore USING ({", ".join(quote(k) for k in t.key)})
        WHERE a.RestoredAt IS NULL
        """
    )
    _put_back(con, table, "_restore_rows", "_DeletedAt", now)
    return [key_of(table, r) for r in restored]


def _put_back(
    con: duckdb.DuckDBPyConnection, table: str, rows: str, deleted_at: str, now: datetime
) -> None:
    """Insert temp table `rows` (archive columns) into dbo.<table> with the columns dbo has now,
    and mark their archive rows restored."""
    t = REPLICATED_TABLES[table]
    present = set(table_columns(con, "dbo", table))
    described = con.execute(f"SELECT * FROM {rows} LIMIT 0").description or ()
    cols = [d[0] for d in described if d[0] in present]
    names = ", ".join(quote(c) for c in cols)
    con.execute(f"INSERT INTO dbo.{quote(table)} ({names}) SELECT {names} FROM {rows}")
    match = " AND ".join(f"a.{quote(k)} = r.{quote(k)}" for k in t.key)
    con.execute(
        f"UPDATE {archive(table)} AS a SET RestoredAt = ? FROM {rows} r "
        f"WHERE {match} AND a.DeletedAt = r.{deleted_at} AND a.RestoredAt IS NULL",
        [now],
    )


def _key_ddl(table: str) -> str:
    t = REPLICATED_TABLES[table]
    return ", ".join(f"{quote(k)} {duckdb_type(t.column(k).sql_type)}" for k in t.key)
