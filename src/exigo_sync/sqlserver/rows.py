"""Many rows into SQL Server, each driver the way it is proven to take them.

- `mssql-python` (Microsoft's driver, bundled): its `executemany` binds the rows as column-wise
  parameter arrays and executes once.
- pyodbc over Microsoft's ODBC Driver (msodbcsql 17 / 18): `fast_executemany`, pyodbc's parameter
  arrays, which is what they were written for.
- pyodbc over any other driver, FreeTDS above all: no parameter arrays. FreeTDS older than 1.5.15
  kills the process inside SQLExecute when pyodbc hands it one (SIGSEGV, mkleehammer/pyodbc#459;
  Debian 12 ships 1.3.17), and pyodbc's wiki lists only Microsoft's drivers as handling them. The
  rows go instead as multi-row `INSERT ... VALUES (?, ...), (?, ...)` statements, as many rows
  per statement as SQL Server's limits allow (2,100 parameters per request, 1,000 rows per
  VALUES list), so a chunk of thousands of rows is a few round trips, not one per row.

The path is decided from the driver actually in use: the connection's module (mssql-python), else
pyodbc's `SQLGetInfo(SQL_DRIVER_NAME)`, the driver's library file (`libmsodbcsql-18.*.so`,
`msodbcsql18.dll`; FreeTDS: `libtdsodbc.so`). A driver that cannot say is treated as FreeTDS.

On the VALUES path pyodbc binds each parameter from its Python value, except where that goes
wrong and the column's type must be given (`setinputsizes`): a NULL for a binary column (pyodbc
would send a varchar NULL, which SQL Server refuses to convert implicitly to varbinary), and
(max) character and binary columns, which FreeTDS takes only as the ODBC "long" types (as a plain
VARBINARY / WVARCHAR of size 0 it refuses long values, "Invalid string or buffer length", or
mangles short binary ones).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Literal

SQL_DRIVER_NAME = 6  # SQLGetInfo: the driver's library file name
MAX_PARAMETERS = 2100  # per request (SQL Server's limit)
MAX_VALUES_ROWS = 1000  # rows in one table value constructor (INSERT ... VALUES)

# ODBC SQL data types (sql.h / sqlext.h / sqlucode.h), as pyodbc's setinputsizes takes them.
SQL_CHAR, SQL_VARCHAR, SQL_LONGVARCHAR = 1, 12, -1
SQL_WCHAR, SQL_WVARCHAR, SQL_WLONGVARCHAR = -8, -9, -10
SQL_BINARY, SQL_VARBINARY, SQL_LONGVARBINARY = -2, -3, -4

Path = Literal["arrays", "fast_executemany", "values"]


def driver_name(con: Any) -> str:
    """The ODBC driver's library file name (pyodbc `getinfo(SQL_DRIVER_NAME)`); "" when the
    connection cannot say."""
    getinfo = getattr(con, "getinfo", None)
    if getinfo is None:
        return ""
    try:
        return str(getinfo(SQL_DRIVER_NAME) or "")
    except Exception:  # a driver without the info type
        return ""


def path(con: Any) -> Path:
    """How `con`'s driver takes many rows (see the module docstring)."""
    if type(con).__module__.split(".")[0] == "mssql_python":
        return "arrays"
    if "msodbcsql" in driver_name(con).lower():
        return "fast_executemany"
    return "values"


def values_input_size(sql_type: str) -> tuple[int, int, int] | None:
    """The `setinputsizes` entry of a column of T-SQL type `sql_type` on the VALUES path: set for
    character and binary types (long ODBC types for (max), text, ntext, image), None (pyodbc
    binds from the value) for every other type."""
    t = sql_type.strip().lower()
    m = re.fullmatch(r"(n)?(var)?(char|binary)\s*(?:\(\s*(\d+|max)\s*\))?|(n?text|image)", t)
    if m is None:
        return None
    if m[5]:
        kind = {"text": SQL_LONGVARCHAR, "ntext": SQL_WLONGVARCHAR, "image": SQL_LONGVARBINARY}
        return (kind[m[5]], 0, 0)
    wide, varying, base, size = bool(m[1]), bool(m[2]), m[3], m[4]
    if size == "max":
        if base == "binary":
            return (SQL_LONGVARBINARY, 0, 0)
        return (SQL_WLONGVARCHAR if wide else SQL_LONGVARCHAR, 0, 0)
    length = int(size or 1)
    if base == "binary":
        return (SQL_VARBINARY if varying else SQL_BINARY, length, 0)
    if wide:
        return (SQL_WVARCHAR if varying else SQL_WCHAR, length, 0)
    return (SQL_VARCHAR if varying else SQL_CHAR, length, 0)


def rows_per_statement(width: int) -> int:
    """Rows of `width` parameters in one multi-row INSERT: within 2,100 parameters per request
    (one kept for the driver's own statement handle) and 1,000 rows per VALUES list."""
    if width < 1:
        raise ValueError("a row needs at least one column")
    return max(1, min(MAX_VALUES_ROWS, (MAX_PARAMETERS - 1) // width))


def values_statement(head: str, width: int, rows: int) -> str:
    """`head` (INSERT INTO t [(columns)]) followed by VALUES for `rows` rows of `width`."""
    row = "(" + ", ".join("?" for _ in range(width)) + ")"
    return f"{head} VALUES " + ", ".join(row for _ in range(rows))


def insert_values(
    cursor: Any, head: str, sql_types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """`rows` through multi-row INSERT ... VALUES statements on `cursor` (the VALUES path)."""
    width = len(sql_types)
    per = rows_per_statement(width)
    sizes = [values_input_size(t) for t in sql_types]
    typed = any(s is not None for s in sizes) and hasattr(cursor, "setinputsizes")
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        if typed:
            cursor.setinputsizes(sizes * len(part))
        params = [value for row in part for value in row]
        cursor.execute(values_statement(head, width, len(part)), params)
    if typed:
        cursor.setinputsizes(None)


def insert_rows(
    con: Any, head: str, sql_types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` (each as many values as `sql_types`) with `head` (INSERT INTO t
    [(columns)]) over DB-API connection `con`, the way its driver takes many rows."""
    if not rows:
        return
    way = path(con)
    cur = con.cursor()
    try:
        if way == "values":
            insert_values(cur, head, sql_types, rows)
            return
        if way == "fast_executemany":
            cur.fast_executemany = True
        cur.executemany(values_statement(head, len(sql_types), 1), [list(r) for r in rows])
    finally:
        with suppress(Exception):  # the connection may be what failed
            cur.close()
