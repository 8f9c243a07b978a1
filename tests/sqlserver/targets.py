"""SQL Server targets for the tests: a made-up one for the recording double
(`sqlserver_target`, with a known `PASSWORD` the tests look for in every message), and the live
test server configured by EXIGO_SYNC_TEST_MSSQL_SERVER, _USER, _PASSWORD, _DATABASE (optional
_PORT, _DRIVER, _TRUST_CERT, _ENCRYPT, _BACKEND = pyodbc | mssql-python): `live_target`, to use
after `live_skip_reason()` said None; and the login that may create databases (`admin_login`:
_ADMIN_USER and _ADMIN_PASSWORD, else the test login)."""

from __future__ import annotations

import functools
import os
from typing import Any

from exigo_sync.profiles import Target

PASSWORD = "S1-kn0wn-Pa55w0rd-src"


def sqlserver_target(**extra: Any) -> Target:
    config = {
        "type": "sqlserver",
        "driver": "ODBC Driver 18 for SQL Server",
        "server": "sql.example.internal",
        "port": 1433,
        "database": "exigo_warehouse",
        "schema": "exigo_sync",
        "user": "exigo_reader",
        "password": PASSWORD,
        "threads": 4,
        **extra,
    }
    return Target("sqlserver", "sqlserver", config)


# --- the live test server ----------------------------------------------------------------------

ENV = "EXIGO_SYNC_TEST_MSSQL_"
SKIP_REASON = (
    "no SQL Server configured (set EXIGO_SYNC_TEST_MSSQL_SERVER, _USER, _PASSWORD, _DATABASE; "
    "optional _PORT, _DRIVER, _TRUST_CERT)"
)


def setting(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV + name, default)


def live_skip_reason() -> str | None:
    """Why the live tests cannot run here (no server configured, or part of it missing)."""
    if not setting("SERVER"):
        return SKIP_REASON
    missing = [n for n in ("USER", "PASSWORD", "DATABASE") if not setting(n)]
    if missing:
        return f"{SKIP_REASON}: missing {', '.join(ENV + n for n in missing)}"
    return None


def _yes(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def live_port() -> int:
    """The port for a dbt-sqlserver profile. dbt-sqlserver writes `SERVER=host,port`; FreeTDS
    with TDSPORT set in the environment (as the live run's `TDSVER=7.4 TDSPORT=...`) is given
    port 0 instead, so the string says `SERVER=host` and FreeTDS takes the port from TDSPORT:
    Babelfish for PostgreSQL drops a FreeTDS login whose server name is `host,port` (FreeTDS
    sends it in the login packet; SQL Server ignores it). Same port, same server either way."""
    port = int(setting("PORT", "1433") or 1433)
    driver = (setting("DRIVER", "") or "").lower()
    if "freetds" in driver and os.environ.get("TDSPORT") == str(port):
        return 0
    return port


def live_config(database: str | None = None, *, user: str | None = None,
                password: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The live server as the `outputs.<name>` of a dbt profile (`password` a value or a
    Jinja env_var() call): the test database and login unless others are given.
    EXIGO_SYNC_TEST_MSSQL_ENCRYPT=no turns encryption off (a server without TLS, e.g. Babelfish
    reached with mssql-python, whose driver encrypts by default)."""
    config: dict[str, Any] = {
        "type": "sqlserver",
        "driver": setting("DRIVER", "ODBC Driver 18 for SQL Server"),
        "server": setting("SERVER"),
        "port": live_port(),
        "database": database or setting("DATABASE"),
        "schema": "exigo_sync",
        "user": user or setting("USER"),
        "password": password or setting("PASSWORD"),
        "trust_cert": _yes(setting("TRUST_CERT", "yes")),
        "backend": setting("BACKEND", "pyodbc"),
        "login_timeout": 15,
    }
    if setting("ENCRYPT") is not None:
        config["encrypt"] = _yes(setting("ENCRYPT"))
    return config


def live_target(database: str | None = None) -> Target:
    """The test server as a dbt-sqlserver target (the keys an operator's profile would have)."""
    return Target("live", "sqlserver", live_config(database))


# --- the login that may create databases -----------------------------------------------------

ADMIN_SKIP_REASON = (
    "no SQL Server login that may create databases configured (set "
    "EXIGO_SYNC_TEST_MSSQL_ADMIN_USER and _ADMIN_PASSWORD, e.g. the sandbox's sa; without them "
    "the test login is used)"
)


def admin_login() -> tuple[str, str] | None:
    """(user, password) of a login that may create databases, for the tests that build their
    own (the flow tests, the sandbox's scratch copies): EXIGO_SYNC_TEST_MSSQL_ADMIN_USER and
    _ADMIN_PASSWORD (`make test-sqlserver`: the sandbox's sa), else the test login itself."""
    user, password = setting("ADMIN_USER"), setting("ADMIN_PASSWORD")
    if user and password:
        return user, password
    if setting("SERVER") and setting("USER") and setting("PASSWORD"):
        return str(setting("USER")), str(setting("PASSWORD"))
    return None


# --- which engine the live server is ------------------------------------------------------------


@functools.cache
def live_server_is_babelfish() -> bool:
    """Whether the live server is Babelfish for PostgreSQL (a T-SQL engine speaking TDS that is
    not SQL Server: its @@VERSION says so). Tests that meet one of its gaps xfail there, naming
    the gap; on SQL Server they run as they are."""
    from exigo_sync import sqlserver as mssql

    con = mssql.connect(live_target(), retries=0)
    try:
        cur = con.cursor()
        cur.execute("SELECT @@VERSION")
        (version,) = cur.fetchall()[0]
    finally:
        con.close()
    return "babelfish" in str(version).lower()


def live_driver_is_freetds() -> bool:
    return (
        setting("BACKEND", "pyodbc") == "pyodbc"
        and "freetds" in (setting("DRIVER", "") or "").lower()
    )


# Babelfish gaps more than one test meets (each test's own are in the test).
COLOCATED_ACROSS_DATABASES = (
    "a table made by SELECT ... INTO from another database's table (three-part "
    "name) is not the warehouse database's own: its dbo gets 'permission denied for table "
    "customers__incoming' reading it, and OBJECT_ID does not see it (CREATE TABLE + INSERT ... "
    "SELECT across databases works; SELECT INTO within one database works, the "
    "colocated-in-sync-database case). SQL Server owns the new table in the database it is made in."
)

DBT_QUERY_LABEL = (
    "dbt-sqlserver 1.11 ends its table and incremental statements with OPTION (LABEL = "
    "'dbt-sqlserver'), and Babelfish does not parse the LABEL query hint (\"syntax error near "
    "'OPTION'\"; OPTION (MAXDOP 1) parses): no dbt build can run on a Babelfish warehouse. "
    "SQL Server takes the label."
)
# The co-located flow meets the first, and past it would meet the second.
COLOCATED_FLOW = f"{COLOCATED_ACROSS_DATABASES} Past it: {DBT_QUERY_LABEL}"


def babelfish_gap(request: Any, target: Any, reason: str, *, freetds_only: bool = False) -> None:
    """Mark the running test xfail (strict: it must fail) when `target` is the live server and
    that is Babelfish (with `freetds_only`, reached through FreeTDS); `reason` names the gap."""
    if getattr(target, "type", None) != "sqlserver" or not live_server_is_babelfish():
        return
    if freetds_only and not live_driver_is_freetds():
        return
    import pytest

    request.applymarker(pytest.mark.xfail(reason=f"Babelfish gap: {reason}", strict=True))
