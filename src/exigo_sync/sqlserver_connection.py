"""DB-API connections to SQL Server, opened exactly as dbt-sqlserver opens them.

The rendered profile target (`outputs.<name>`) becomes dbt-sqlserver's own
`SQLServerCredentials` (its aliases, defaults and validation: `server`/`host`, `user`/`UID`,
`password`/`PWD`, `encrypt` true by default, `trust_cert`, `authentication` sql /
ActiveDirectory* / serviceprincipal / msi / cli / environment, `windows_login`, `login_timeout`,
`query_timeout`, `retries`, `xact_abort`, `backend`), and the connection is opened with
dbt-sqlserver's own connection-string builders and connect helpers: the ledger, the lock, the
source client and dbt reach the server the same way.

Two backends, as in dbt-sqlserver: `pyodbc` (unixODBC plus an ODBC driver: Microsoft ODBC Driver
18, or FreeTDS `tdsodbc` speaking TDS >= 7.3, set in freetds.conf or TDSVER since the profile has
no key for it) and `mssql-python` (Microsoft's driver; its wheels bundle ODBC Driver 18, but on
Linux it still needs libltdl7, libkrb5-3, libgssapi-krb5-2 from the system). Both are imported
only inside these functions: the DuckDB path never loads them.

`classify()` sorts SQL Server errors into transient / permanent by native error number and
SQLSTATE; `describe()` turns one into a one-line, secret-free message (never the connection
string; always through the target's scrub, S1).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from exigo_sync.profiles import ProfileError, Target

Kind = Literal["transient", "permanent"]
BACKENDS = ("pyodbc", "mssql-python")

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


class SqlServerConfigError(ProfileError):
    """The dbt target cannot give a SQL Server connection (missing key, backend, driver)."""


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
    SQLSTATE), then by SQLSTATE (connection lost, timeout, deadlock)."""
    from exigo_sync.source import TransientSourceError
    from exigo_sync.warehouse.connection import WarehouseBusy

    if isinstance(exc, TransientSourceError | WarehouseBusy):
        return "transient"
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


# --- credentials, exactly as dbt reads them ------------------------------------------------------


def credentials(target: Target, database: str | None = None) -> Any:
    """dbt-sqlserver's `SQLServerCredentials` for the target (as `dbt debug` builds them: same
    aliases, defaults, validation); `database` replaces the target's (the sync database on the
    warehouse's server, in the co-located topology)."""
    from dbt.adapters.sqlserver.sqlserver_credentials import SQLServerCredentials

    if target.type != "sqlserver":
        raise SqlServerConfigError(f"dbt target '{target.name}' is {target.type}, not sqlserver")
    data = {k: v for k, v in target.config.items() if k not in ("type", "threads")}
    data = SQLServerCredentials.translate_aliases(data)
    if database:
        data["database"] = database
    try:
        SQLServerCredentials.validate(data)
        return SQLServerCredentials.from_dict(data)
    except Exception as exc:  # dbt's ValidationError / DbtRuntimeError; may quote a value
        raise SqlServerConfigError(
            target.scrub(
                f"dbt target '{target.name}' is not a valid sqlserver target: {_dbt_text(exc)}"
            )
        ) from None


def _dbt_text(exc: BaseException) -> str:
    """The first line of a dbt error's own message (str() of a DbtRuntimeError starts with
    "Runtime Error"; a jsonschema ValidationError has `.message`)."""
    text = str(getattr(exc, "msg", None) or getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def backend(creds: Any) -> str:
    return str(getattr(creds.backend, "value", creds.backend))


def _prepared(target: Target, database: str | None) -> tuple[Any, str]:
    """Validated credentials and the connection string (never logged, never in a message)."""
    from dbt.adapters.sqlserver.sqlserver_backend import (
        build_mssql_python_connection_string,
        build_pyodbc_connection_string,
    )
    from dbt.adapters.sqlserver.sqlserver_helpers import (
        validate_connection_requirements,
        validate_mssql_python_requirements,
        validate_pyodbc_requirements,
    )

    creds = credentials(target, database)
    try:
        validate_connection_requirements(creds)
        if backend(creds) == "mssql-python":
            validate_mssql_python_requirements(creds)
            return creds, build_mssql_python_connection_string(creds)
        validate_pyodbc_requirements(creds)
        return creds, build_pyodbc_connection_string(creds)
    except Exception as exc:
        message = target.scrub(f"dbt target '{target.name}': {_dbt_text(exc)}")
        raise SqlServerConfigError(message) from None


def driver_module(backend_name: str) -> Any:
    """The DB-API module of a backend, imported here and only here (through dbt-sqlserver's own
    lazy importer, so both share one module state)."""
    from dbt.adapters.sqlserver.sqlserver_runtime import _get_mssql_python, _get_pyodbc

    try:
        return _get_mssql_python() if backend_name == "mssql-python" else _get_pyodbc()
    except Exception as exc:  # DbtRuntimeError: "... is not installed. Install it with ..."
        raise SqlServerConfigError(_dbt_text(exc)) from None


def connect(
    target: Target,
    *,
    database: str | None = None,
    module: Any = None,
    retries: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """An open, autocommitting DB-API connection, made as dbt-sqlserver makes it: its
    connection string, `pooling`, Azure token `attrs_before`, `login_timeout`, `query_timeout`
    (`connection.timeout`), `SET XACT_ABORT ON` unless `xact_abort: false`; a transient failure
    to connect is retried `retries` times one second apart (dbt retries by exception class;
    this retries by `classify`, so a login failure is not retried).

    `retries` overrides the profile's (e.g. 0 for a quick check). `module` replaces the
    backend's driver module (pyodbc / mssql_python), for tests. Driver errors propagate
    unchanged: callers map them with `classify` / `describe`.
    """
    from dbt.adapters.sqlserver.sqlserver_backend import _connect_mssql_python, _connect_pyodbc

    creds, con_str = _prepared(target, database)
    name = backend(creds)
    driver = module if module is not None else driver_module(name)
    opener = _connect_mssql_python if name == "mssql-python" else _connect_pyodbc
    attempts = max(0, int((creds.retries or 0) if retries is None else retries)) + 1
    for attempt in range(attempts):
        try:
            handle = opener(driver, creds, con_str)
            break
        except Exception as exc:
            if _is_missing_odbc_driver(exc, name):
                raise SqlServerConfigError(missing_driver_message(creds, driver)) from None
            if attempt + 1 >= attempts or classify(exc) != "transient":
                raise
            sleep(1.0)
    if creds.xact_abort:
        _apply_session_settings(handle)
    return handle


def _apply_session_settings(handle: Any) -> None:
    """dbt-sqlserver's session default (dbt-msft/dbt-sqlserver#718): a run-time error or an
    attention (timeout, cancel) rolls back the open transaction instead of leaving it open."""
    cursor = handle.cursor()
    try:
        cursor.execute("SET XACT_ABORT ON")
    except BaseException:
        handle.close()
        raise
    finally:
        cursor.close()


def _is_missing_odbc_driver(exc: BaseException, backend_name: str) -> bool:
    """unixODBC's answers for a `driver` it does not know: "[01000] Can't open lib 'X' : file
    not found" (not in odbcinst.ini / library gone) or "[IM002] Data source name not found"."""
    if backend_name != "pyodbc" or not is_driver_error(exc):
        return False
    text = str(exc).lower()
    return "can't open lib" in text or "data source name not found" in text


def missing_driver_message(creds: Any, driver: Any) -> str:
    installed = ", ".join(getattr(driver, "drivers", list)()) or "none"
    return (
        f"ODBC driver '{creds.driver}' is not installed (unixODBC has: {installed}); install "
        "Microsoft's msodbcsql18, or FreeTDS's tdsodbc with `driver: FreeTDS` (TDS_Version 7.4 "
        "in freetds.conf), or use `backend: mssql-python`"
    )
