"""The one way the Python side writes a name into SQL it builds: every identifier that is not a
fixed name of this project (a schema found in the catalogue, a source column, a database name)
goes through here, so a crafted name stays one identifier and never becomes SQL (S1, S2).
Values travel as bound parameters, except in the few statements that take none (DuckDB's
ATTACH and SET): there they are written as `literal`s."""

from __future__ import annotations


def quote(name: str) -> str:
    """An identifier in double quotes (a `"` inside doubled): DuckDB, and SQL Server with
    QUOTED_IDENTIFIER on (its default for ODBC connections)."""
    return '"' + str(name).replace('"', '""') + '"'


def bracket(name: str) -> str:
    """A T-SQL identifier in brackets (a `]` inside doubled): database names in three-part
    names."""
    return "[" + str(name).replace("]", "]]") + "]"


def literal(value: object) -> str:
    """A string literal (a `'` inside doubled), for a statement that takes no bound parameter
    (DuckDB's ATTACH path, SET value)."""
    return "'" + str(value).replace("'", "''") + "'"
