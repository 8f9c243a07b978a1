"""What SQL Server drivers' errors mean (exigo_sync.sqlserver.errors), shared by the source client
and the warehouse engine: `classify` gives a kind (transient or permanent) from the native error
numbers, the SQLSTATE or the driver's own exception, and `driver_error` / `describe` read and
word the diagnostic. The errors are shaped as pyodbc and mssql-python build them
(tests/sqlserver/doubles.py: `odbc_error`); what a real server sends is for the live tests."""

from __future__ import annotations

import pyodbc
import pytest

from exigo_sync import sqlserver as mssql
from exigo_sync.source import TransientSourceError
from tests.sqlserver.doubles import odbc_error
from tests.sqlserver.targets import sqlserver_target

TRANSIENT_NUMBERS = [1205, 1222, 10054, 10053, 233, 64, 40613, 40501, 40197, 49918, 49919,
                     49920, 4060, 1204, 4221, 10060, 10928, 10929, 40143, 40540, 997]  # fmt: skip


PERMANENT_NUMBERS = [229, 230, 262, 300, 2812, 208, 18456, 2627]


@pytest.mark.parametrize("number", TRANSIENT_NUMBERS)
def test_classify_transient_native_errors(number: int) -> None:
    """Proves every listed transient native error number is `transient`, whatever the
    exception class and SQLSTATE pyodbc gives it (here a generic 42000 ProgrammingError)."""
    exc = odbc_error(pyodbc.ProgrammingError, "42000", number, "message")
    assert mssql.classify(exc) == "transient"
    assert mssql.driver_error(exc).numbers == (number,)


@pytest.mark.parametrize("number", PERMANENT_NUMBERS)
def test_classify_permanent_native_errors(number: int) -> None:
    """Proves permission-denied / missing-object / login errors are `permanent` even when the
    SQLSTATE alone would say transient (here 08S01)."""
    exc = odbc_error(pyodbc.OperationalError, "08S01", number, "message")
    assert mssql.classify(exc) == "permanent"


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [("08S01", "transient"), ("08001", "transient"), ("HYT00", "transient"),
     ("HYT01", "transient"), ("40001", "transient"), ("42000", "permanent"),
     ("28000", "permanent"), ("23000", "permanent"), ("HY000", "permanent")],
)  # fmt: skip
def test_classify_by_sqlstate_without_a_known_number(sqlstate: str, kind: str) -> None:
    """Proves the SQLSTATE fallback: connection loss, timeouts and deadlock are transient; the
    rest permanent."""
    exc = pyodbc.OperationalError(sqlstate, f"[{sqlstate}] [Microsoft][ODBC]Something (0) (f)")
    assert mssql.classify(exc) == kind


def test_classify_reads_the_network_error_of_a_tcp_provider_message() -> None:
    """Proves the native number inside a TCP provider message ("Error code 0x2746 (10054)" or
    only "0x2746") is read, with or without a SQLSTATE."""
    exc = pyodbc.Error("HY000", "[HY000] [Microsoft]TCP Provider: Error code 0x2746 (SQLExecute)")
    assert mssql.driver_error(exc).numbers == (10054,)
    assert mssql.classify(exc) == "transient"


def test_several_diagnostic_records_show_the_one_that_matters() -> None:
    """Proves that when pyodbc joins several records ("; "), an informational one first (5701,
    changed database context), the listed error (229) decides the class and the message."""
    exc = pyodbc.ProgrammingError(
        "42000",
        "[01000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Changed database context "
        "to 'ExigoSync'. (5701) (SQLExecDirectW); [42000] [Microsoft][ODBC Driver 18 for SQL "
        "Server][SQL Server]The EXECUTE permission was denied on the object 'Refresh'. (229)",
    )
    info = mssql.driver_error(exc)
    assert info.numbers == (229, 5701) and info.text.startswith("The EXECUTE permission")
    assert mssql.classify(exc) == "permanent"
    assert "native error 229" in mssql.describe(exc, sqlserver_target(), "run queue.Refresh")


def test_classify_non_driver_errors() -> None:
    """Proves the classifier knows only drivers' errors and the standard library's network
    timeouts: anything else is permanent, whatever a caller named it (each side maps the kind to
    its own exceptions, so this room imports neither side)."""
    assert mssql.classify(TimeoutError()) == "transient"
    assert mssql.classify(ConnectionResetError()) == "transient"
    assert mssql.classify(TransientSourceError("x")) == "permanent"
    assert mssql.classify(ValueError("x")) == "permanent"


def test_classify_mssql_python_errors_by_their_sqlstate_text() -> None:
    """Proves mssql_python exceptions (which keep no SQLSTATE attribute, only the description
    its own table gives the SQLSTATE) are classified through that table: a deadlock (40001),
    connection loss (08S01) and a timeout (HYT00) are transient, a permission error is not.
    Cannot prove what native numbers mssql_python puts into its messages on a real server."""
    exceptions = pytest.importorskip("mssql_python.exceptions")
    for state, kind in [("40001", "transient"), ("08S01", "transient"), ("HYT00", "transient"),
                        ("42000", "permanent"), ("28000", "permanent")]:  # fmt: skip
        exc = exceptions.sqlstate_to_exception(state, "[Microsoft][SQL Server]something")
        assert mssql.is_driver_error(exc)
        assert mssql.driver_error(exc).sqlstate == state
        assert mssql.classify(exc) == kind, state
