"""exigo_sync.sqlserver.rows: which way many rows go, decided from the driver in use, and the
multi-row INSERT ... VALUES of the drivers without parameter arrays (FreeTDS). The types given to
FreeTDS are the ones the live engine accepted (pyodbc 5 + FreeTDS 1.3: a (max) value as a plain
WVARCHAR / VARBINARY of size 0 failed with 'Invalid string or buffer length', or was mangled)."""

from __future__ import annotations

import pyodbc
import pytest

from exigo_sync.sqlserver import rows
from tests.sqlserver.doubles import FREETDS, MSODBC18, RecordingConnection, RecordingDriver


def test_the_path_is_the_driver_in_use() -> None:
    assert rows.path(RecordingDriver(driver=MSODBC18).open()) == "fast_executemany"
    assert rows.path(RecordingDriver(driver=FREETDS).open()) == "values"
    mssql_python = type("Connection", (), {"__module__": "mssql_python.connection"})()
    assert rows.path(mssql_python) == "arrays"

    class Silent(RecordingConnection):
        def getinfo(self, info_type: int) -> str:
            raise pyodbc.Error("HY096", "Information type out of range")

    d = RecordingDriver()
    assert rows.path(Silent(d.log, d.respond, 0)) == "values"  # unknown: no arrays
    assert rows.driver_name(object()) == ""
    for name, way in [
        ("libmsodbcsql-17.10.so.6.1", "fast_executemany"),
        ("msodbcsql18.dll", "fast_executemany"),
        ("libtdsodbc.so", "values"),
        ("SQLSRV32.DLL", "values"),  # Windows' old "SQL Server" driver
    ]:
        con = type("C", (), {"getinfo": lambda self, t, n=name: n})()
        assert rows.path(con) == way, name


@pytest.mark.parametrize(
    ("sql_type", "size"),
    [
        ("nvarchar(max)", (pyodbc.SQL_WLONGVARCHAR, 0, 0)),
        ("varchar(max)", (pyodbc.SQL_LONGVARCHAR, 0, 0)),
        ("varbinary(max)", (pyodbc.SQL_LONGVARBINARY, 0, 0)),
        ("nvarchar(50)", (pyodbc.SQL_WVARCHAR, 50, 0)),
        ("varchar(20)", (pyodbc.SQL_VARCHAR, 20, 0)),
        ("nchar(3)", (pyodbc.SQL_WCHAR, 3, 0)),
        ("char", (pyodbc.SQL_CHAR, 1, 0)),
        ("varbinary(50)", (pyodbc.SQL_VARBINARY, 50, 0)),
        ("binary(16)", (pyodbc.SQL_BINARY, 16, 0)),
        ("ntext", (pyodbc.SQL_WLONGVARCHAR, 0, 0)),
        ("image", (pyodbc.SQL_LONGVARBINARY, 0, 0)),
        ("int", None),
        ("datetime", None),
        ("money", None),
        ("decimal(19,4)", None),
        ("uniqueidentifier", None),
    ],
)
def test_values_input_sizes(sql_type: str, size: tuple | None) -> None:
    assert rows.values_input_size(sql_type) == size


def test_rows_per_statement_stays_within_the_limits() -> None:
    assert rows.rows_per_statement(1) == 1000  # the VALUES list's limit
    assert rows.rows_per_statement(6) == 349
    assert rows.rows_per_statement(2099) == 1
    for width in range(1, 2100, 7):
        assert rows.rows_per_statement(width) * width < 2100
    with pytest.raises(ValueError):
        rows.rows_per_statement(0)
    assert rows.values_statement("INSERT INTO t", 2, 2) == "INSERT INTO t VALUES (?, ?), (?, ?)"
