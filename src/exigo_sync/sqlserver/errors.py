"""What SQL Server's drivers say when something fails, in exigo-sync's words.

`classify()` sorts SQL Server errors into transient / permanent by native error number and
SQLSTATE, and returns that *kind*: the source client turns it into `TransientSourceError` /
`SourceError`, the warehouse engine into `WarehouseBusy` / `WarehouseError`; this module knows
neither. `describe()` turns an error into one secret-free line (never the connection string;
always through the target's scrub, S1). Works on pyodbc and mssql_python exceptions without
importing either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from exigo_sync.profiles import Target

Kind = Literal["transient", "permanent"]

# Worth a retry (B5). Microsoft's list of transient SQL Server / Azure SQL errors is the one
# Microsoft.Data.SqlClient retries by default (SqlConfigurableRetryFactory, learn.microsoft.com/
# dotnet/api/microsoft.data.sqlclient.sqlconfigurableretryfactory); 10053 / 10054 / 64 come from
# Entity Framework's SqlAzureExecutionStrategy list (learn.microsoft.com/dotnet/api/
# system.data.entity.sqlserver.sqlazureexecutionstrategy).
TRANSIENT_ERRORS: Mapping[int, str] = {
    64: "the connection was dropped by the network",
    233: "the connection was closed during login",
    997: "the connection was interrupted during login",
    1204: "the server is out of lock resources",
    1205: "chosen as a deadlock victim",
    1222: "lock request timed out",
    4060: (
        "the database could not be opened (transient while an Azure database fails over; if "
        "it persists the database name is wrong or the login has no user in it)"
    ),
    4221: "a readable secondary replica is not ready yet",
    10053: "the connection was aborted",
    10054: "the connection was reset by the server",
    10060: "the server did not answer in time",
    10928: "Azure SQL resource limit reached",
    10929: "Azure SQL server too busy",
    40143: "Azure SQL service error",
    40197: "Azure SQL service error while reconfiguring (failover, upgrade)",
    40501: "Azure SQL service busy",
    40540: "Azure SQL service error",
    40613: "Azure SQL database not currently available",
    49918: "Azure SQL: not enough resources to process the request",
    49919: "Azure SQL: too many create or update operations in progress",
    49920: "Azure SQL: too many operations in progress",
}

# Retrying will not fix these: named so the message can say what to do.
PERMANENT_ERRORS: Mapping[int, str] = {
    208: "object not found",
    229: "permission denied on an object",
    230: "permission denied on a column",
    262: "permission denied in the database",
    300: "permission denied",
    2601: "duplicate key",
    2627: "duplicate key (primary key or unique constraint)",
    2812: "stored procedure not found",
    4064: "cannot open the login's default database",
    18456: "login failed (check user / password / authentication)",
}

# Connection lost or never made, timeouts, deadlock (SQLSTATE of 1205).
TRANSIENT_SQLSTATES = frozenset({"08S01", "08001", "HYT00", "HYT01", "40001"})

# Native numbers in pyodbc messages: "...Rerun the transaction. (1205) (SQLExecDirectW)"; the
# network error of a TCP provider message: "Error code 0x2746 (10054)" or just "0x2746".
_NATIVE = re.compile(r"\((\d+)\)")
_HEX_CODE = re.compile(r"Error code 0x([0-9A-Fa-f]+)")
_RECORDS = re.compile(r"; (?=\[)")
_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")
_TRAILER = re.compile(r"(\s*\((\d+|SQL\w+)\))+\s*$")


@dataclass(frozen=True)
class DriverError:
    """What a driver exception says, whichever backend raised it."""

    sqlstate: str | None
    numbers: tuple[int, ...]  # native error numbers, a listed (known) one first
    text: str  # the diagnostic record of that error, without the [vendor][driver] prefixes

    @property
    def number(self) -> int | None:
        return self.numbers[0] if self.numbers else None


def is_driver_error(exc: BaseException) -> bool:
    """An exception raised by pyodbc or mssql_python (checked without importing either)."""
    return any(c.__module__.split(".")[0] in ("pyodbc", "mssql_python") for c in type(exc).__mro__)


def driver_error(exc: BaseException) -> DriverError:
    """SQLSTATE, native error numbers and message of a pyodbc / mssql_python exception."""
    module = type(exc).__module__.split(".")[0]
    if module == "mssql_python":
        text = str(getattr(exc, "ddbc_error", "") or getattr(exc, "driver_error", "") or exc)
        sqlstate = _mssql_python_sqlstate(str(getattr(exc, "driver_error", "")))
    else:
        # pyodbc: args = (sqlstate, "[sqlstate] [vendor][driver]message (native) (function)")
        args = exc.args
        has_state = len(args) >= 2 and isinstance(args[0], str) and len(args[0]) == 5
        sqlstate = args[0] if has_state else None
        text = str(args[1] if has_state else (args[0] if args else exc))
    numbers = [int(n) for n in _NATIVE.findall(text) if int(n) != 0]
    numbers += [int(h, 16) for h in _HEX_CODE.findall(text)]
    numbers = list(dict.fromkeys(numbers))
    # pyodbc joins diagnostic records with "; ": show the one carrying the error we know about.
    records = [r for r in _RECORDS.split(text.strip()) if r.strip()] or [type(exc).__name__]
    known = next((n for n in numbers if n in PERMANENT_ERRORS or n in TRANSIENT_ERRORS), None)
    if known is not None:
        numbers.remove(known)
        numbers.insert(0, known)
    shown = next((r for r in records if known is not None and f"({known})" in r), records[0])
    first = shown.splitlines()[0]
    clean = _TRAILER.sub("", _PREFIX.sub("", first)).strip() or first
    return DriverError(sqlstate, tuple(numbers), clean)


def _mssql_python_sqlstate(driver_text: str) -> str | None:
    """mssql_python keeps no SQLSTATE on its exceptions, only the description its own table
    gives each SQLSTATE: map that description back through the same table."""
    from mssql_python.exceptions import sqlstate_to_exception

    for state in (*TRANSIENT_SQLSTATES, "28000", "42000", "23000", "IM002", "42S02"):
        mapped = sqlstate_to_exception(state, "")
        if mapped is not None and mapped.driver_error == driver_text:
            return state
    return None


def classify(exc: BaseException) -> Kind:
    """`transient` (retry with backoff may succeed, B5) or `permanent`, for a SQL Server error:
    by native error number first (a permission or missing-object error is permanent whatever its
    SQLSTATE), then by SQLSTATE (connection lost, timeout, deadlock). Knows only the drivers'
    exceptions (and the standard library's timeouts): each caller maps the kind to its own."""
    if not is_driver_error(exc):
        return "transient" if isinstance(exc, TimeoutError | ConnectionError) else "permanent"
    info = driver_error(exc)
    if any(n in PERMANENT_ERRORS for n in info.numbers):
        return "permanent"
    if any(n in TRANSIENT_ERRORS for n in info.numbers):
        return "transient"
    return "transient" if info.sqlstate in TRANSIENT_SQLSTATES else "permanent"


def describe(
    exc: BaseException, target: Target, action: str, *, database: str | None = None
) -> str:
    """One secret-free line: what failed, where (`database` if not the target's), and the
    server's reason with its numbers."""
    where = f"SQL Server {endpoint(target, database)}"
    if not is_driver_error(exc):
        return target.scrub(f"{where}: could not {action}: {type(exc).__name__}: {exc}")
    info = driver_error(exc)
    notes = [known] if (known := known_error(info)) else []
    if info.number:
        notes.append(f"native error {info.number}")
    if info.sqlstate:
        notes.append(f"SQLSTATE {info.sqlstate}")
    detail = "; ".join(notes) or "no error code"
    return target.scrub(f"{where}: could not {action}: {info.text} ({detail})")


def known_error(info: DriverError) -> str | None:
    """What exigo-sync knows about the first of the error's numbers it has listed."""
    for n in info.numbers:
        if n in PERMANENT_ERRORS or n in TRANSIENT_ERRORS:
            return PERMANENT_ERRORS.get(n) or TRANSIENT_ERRORS[n]
    return None


def endpoint(target: Target, database: str | None = None) -> str:
    """`server,port/database` for messages (no credentials in it)."""
    c = target.config
    server = c.get("server") or c.get("host") or "?"
    port = c.get("port")
    return f"{server}{f',{port}' if port else ''}/{database or c.get('database') or '?'}"
