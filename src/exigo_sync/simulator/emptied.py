"""A dbo table that reads empty for a while, then comes back: what a consumer sees while the
sync re-initialises a table, or while its login has lost the permission to read it.

The rows are not deleted at the source, they are only out of sight: `empty` moves them into
`sim.Emptied<Table>`, `restore` moves them back. The back office carries on meanwhile, so an
`advance` works on the whole truth (it moves the rows back into dbo for its transaction and out
again at the end): the activity stays consistent (no order for a customer it cannot see), and
a restored table holds exactly the rows it had when emptied plus the changes made since.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from exigo_sync.simulator.db import quote


class EmptiedError(ValueError):
    """Emptying a table that is already empty-for-now, or restoring one that is not."""


def stash(table: str) -> str:
    return f"sim.{quote('Emptied' + table)}"


def emptied_tables(con: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    rows = con.execute("SELECT TableName, EmptiedAt FROM sim.EmptiedTables ORDER BY 1").fetchall()
    return {r[0]: r[1] for r in rows}


def empty(con: duckdb.DuckDBPyConnection, table: str, now: datetime) -> int:
    """Hide every row of dbo.<table>; returns how many."""
    if table in emptied_tables(con):
        raise EmptiedError(f"dbo.{table} is already emptied; restore it first")
    con.execute("INSERT INTO sim.EmptiedTables VALUES (?, ?)", [table, now])
    return _hide(con, table)


def restore(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Bring the hidden rows of dbo.<table> back; returns how many."""
    if table not in emptied_tables(con):
        raise EmptiedError(f"dbo.{table} is not emptied")
    con.execute("DELETE FROM sim.EmptiedTables WHERE TableName = ?", [table])
    return _show(con, table)


def show_all(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Before activity: every emptied table's rows back in dbo (inside the caller's
    transaction); returns the tables, for `hide_again`."""
    tables = list(emptied_tables(con))
    for table in tables:
        _show(con, table)
    return tables


def hide_again(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    for table in tables:
        _hide(con, table)


def _hide(con: duckdb.DuckDBPyConnection, table: str) -> int:
    # The stash takes dbo's columns as they are (a schema-evolution column included); the
    # simulator refuses column changes on an emptied table, so they still match at restore.
    con.execute(f"CREATE TABLE {stash(table)} AS SELECT * FROM dbo.{quote(table)}")
    row = con.execute(f"DELETE FROM dbo.{quote(table)}").fetchone()
    return int(row[0]) if row else 0


def _show(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"INSERT INTO dbo.{quote(table)} SELECT * FROM {stash(table)}").fetchone()
    con.execute(f"DROP TABLE {stash(table)}")
    return int(row[0]) if row else 0
