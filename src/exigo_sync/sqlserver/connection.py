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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from exigo_sync.profiles import ProfileError, Target
from exigo_sync.sqlserver.errors import classify, is_driver_error

BACKENDS = ("pyodbc", "mssql-python")


class SqlServerConfigError(ProfileError):
    """The dbt target cannot give a SQL Server connection (missing key, backend, driver)."""


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
