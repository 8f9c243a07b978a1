"""Against a live SQL Server, when one is configured (EXIGO_SYNC_TEST_MSSQL_SERVER, _USER,
_PASSWORD, _DATABASE; optional _PORT, _DRIVER, _TRUST_CERT); skipped otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from exigo_sync.warehouse import ledger_sql
from tests.sqlserver.targets import live_skip_reason, setting

pytestmark = pytest.mark.sqlserver


@pytest.fixture
def mssql() -> Iterator[Any]:
    if reason := live_skip_reason():
        pytest.skip(reason)
    import pyodbc

    driver = setting("DRIVER", "ODBC Driver 18 for SQL Server")
    server, port = setting("SERVER"), setting("PORT", "1433")
    parts = {
        "DRIVER": "{" + driver + "}",
        "DATABASE": setting("DATABASE"),
        "UID": setting("USER"),
        "PWD": setting("PASSWORD"),
    }
    if "freetds" in driver.lower():
        parts.update({"SERVER": server, "PORT": port, "TDS_Version": "7.4"})
    else:
        trust = setting("TRUST_CERT", "yes").lower() in ("1", "true", "yes")
        parts.update(
            {"SERVER": f"{server},{port}", "TrustServerCertificate": "yes" if trust else "no"}
        )
    con = pyodbc.connect(";".join(f"{k}={v}" for k, v in parts.items()), autocommit=True)
    try:
        yield con
    finally:
        con.close()


def test_sqlserver_select_one(mssql):
    assert mssql.cursor().execute("select 1").fetchone()[0] == 1


def test_sqlserver_ledger_ddl_and_dml_in_a_temporary_schema(mssql, monkeypatch):
    schema = f"exigo_sync_test_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(ledger_sql, "SCHEMA", schema)
    cur = mssql.cursor()

    def in_schema(sql: str) -> str:
        return sql.replace("exigo_sync.", f"{schema}.")

    try:
        for _ in range(2):  # idempotent
            for stmt in ledger_sql.ddl("sqlserver"):
                assert schema in stmt
                cur.execute(stmt)
        tables = {
            r[0]
            for r in cur.execute(
                "select table_name from information_schema.tables where table_schema = ?", schema
            ).fetchall()
        }
        assert tables == {"batches", "batch_entity_stats", "run_lock"}

        # One batch through its life, with bound parameters as the ledger binds them.
        now = datetime(2026, 1, 5, 10, 0, 0)
        refreshed = datetime(2026, 1, 5, 9, 59, 30, 123000)
        assert cur.execute(in_schema(ledger_sql.NEXT_BATCH_ID)).fetchone()[0] == 1
        start = datetime(2026, 1, 4, 10, 0, 0)
        cur.execute(
            in_schema(ledger_sql.INSERT_BATCH), 1, "run-1", "sqlserver", "initial", start, now, 0
        )
        counts = [3] * len(ledger_sql.ROW_COLUMNS)
        cur.execute(in_schema(ledger_sql.MARK_REFRESHED), refreshed, now, 0, *counts, 1)  # 0: UTC
        cur.execute(in_schema(ledger_sql.MARK_MERGED), "inv-1", now, 1)
        assert cur.execute(in_schema(ledger_sql.WATERMARK)).fetchone()[0] == refreshed
        assert cur.execute(in_schema(ledger_sql.COUNT_IN_FLIGHT)).fetchone()[0] == 0
        recent = cur.execute(in_schema(ledger_sql.RECENT_BATCHES), 5).fetchall()
        assert [r[0] for r in recent] == [1]
    finally:
        for table in ("batches", "batch_entity_stats", "run_lock"):
            cur.execute(f"IF OBJECT_ID('{schema}.{table}') IS NOT NULL DROP TABLE {schema}.{table}")
        cur.execute(f"IF SCHEMA_ID('{schema}') IS NOT NULL EXEC('DROP SCHEMA {schema}')")
