"""Everything both sides share about SQL Server: connections opened as dbt-sqlserver opens them
(`connection`) and what the drivers' errors mean (`errors`). The source client
(`source/sqlserver_client.py`) and the warehouse engine (`warehouse/sqlserver_engine.py`) build on
this room; it imports neither."""

from exigo_sync.sqlserver.connection import (
    BACKENDS,
    SqlServerConfigError,
    backend,
    connect,
    credentials,
    driver_module,
    missing_driver_message,
)
from exigo_sync.sqlserver.errors import (
    PERMANENT_ERRORS,
    TRANSIENT_ERRORS,
    TRANSIENT_SQLSTATES,
    DriverError,
    Kind,
    classify,
    describe,
    driver_error,
    endpoint,
    is_driver_error,
    known_error,
)

__all__ = [
    "BACKENDS",
    "PERMANENT_ERRORS",
    "TRANSIENT_ERRORS",
    "TRANSIENT_SQLSTATES",
    "DriverError",
    "Kind",
    "SqlServerConfigError",
    "backend",
    "classify",
    "connect",
    "credentials",
    "describe",
    "driver_error",
    "driver_module",
    "endpoint",
    "is_driver_error",
    "known_error",
    "missing_driver_message",
]
