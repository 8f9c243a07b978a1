"""SQL Server targets for the tests: a made-up one for the recording double
(`sqlserver_target`, with a known `PASSWORD` the tests look for in every message), and the live
test server configured by EXIGO_SYNC_TEST_MSSQL_SERVER, _USER, _PASSWORD, _DATABASE (optional
_PORT, _DRIVER, _TRUST_CERT, _BACKEND = pyodbc | mssql-python): `live_target`, to use after
`live_skip_reason()` said None."""

from __future__ import annotations

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


def live_target() -> Target:
    """The test server as a dbt-sqlserver target (the keys an operator's profile would have)."""
    trust = (setting("TRUST_CERT", "yes") or "").lower() in ("1", "true", "yes")
    config = {
        "type": "sqlserver",
        "driver": setting("DRIVER", "ODBC Driver 18 for SQL Server"),
        "server": setting("SERVER"),
        "port": int(setting("PORT", "1433") or 1433),
        "database": setting("DATABASE"),
        "schema": "exigo_sync",
        "user": setting("USER"),
        "password": setting("PASSWORD"),
        "trust_cert": trust,
        "backend": setting("BACKEND", "pyodbc"),
        "login_timeout": 15,
    }
    return Target("live", "sqlserver", config)
