"""The SQL Server warehouse over pyodbc (imported only on this path)."""

from __future__ import annotations

from exigo_sync.profiles import ProfileError, Target


def open_sqlserver(target: Target):
    raise ProfileError(
        f"dbt target '{target.name}' is sqlserver: the warehouse connection for it is not "
        "implemented yet (only duckdb is)"
    )
