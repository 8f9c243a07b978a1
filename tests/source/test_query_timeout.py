"""R4's query timeout at a SQL Server source, short of a live server: a statement the driver
ends at the timeout (SQLSTATE HYT00, as pyodbc raises it) is a transient source error (B5: the
flow retries it) whose message names the setting that bounds it. The live test in
tests/sqlserver/test_live_cancel.py proves a real driver and server end a blocked refresh so."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyodbc
import pytest

from exigo_sync.source import TransientSourceError
from exigo_sync.source.sqlserver_client import (
    QUERY_TIMEOUT_SETTING,
    REFRESH_SQL,
    SqlServerSourceClient,
)
from tests.sqlserver.blocking_double import BlockingConnection
from tests.sqlserver.targets import PASSWORD, sqlserver_target


def timed_out() -> pyodbc.Error:
    return pyodbc.OperationalError(
        "HYT00", "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (0) "
        "(SQLExecDirectW)",
    )  # fmt: skip


class TimingOut(BlockingConnection):
    """The statement `blocks` picks fails as the driver fails it at the query timeout."""

    def wait_blocked(self, cursor: Any) -> None:
        self.record(f"timeout={self.timeout}")
        raise timed_out()


def client(con: BlockingConnection, target: Any = None, **kwargs: Any) -> SqlServerSourceClient:
    return SqlServerSourceClient(target or sqlserver_target(), database="ExigoSync",
                                 connect=lambda: con, **kwargs)  # fmt: skip


def test_r4_a_refresh_past_the_query_timeout_is_transient_naming_the_setting() -> None:
    con = TimingOut(lambda sql: sql == REFRESH_SQL)
    with pytest.raises(TransientSourceError) as raised:
        client(con, query_timeout=30).refresh(datetime(2026, 1, 4))
    message = str(raised.value)
    assert f"{QUERY_TIMEOUT_SETTING}=30" in message and "queue.Refresh" in message, message
    assert "HYT00" in message and PASSWORD not in message
    assert "timeout=30" in con.names()  # the setting is the connection's query timeout
    assert "rollback" in con.names() and con.closed


def test_r4_without_the_setting_the_message_names_the_profile_query_timeout() -> None:
    con = TimingOut(lambda sql: sql.startswith("SELECT SYSDATETIME(), SYSUTCDATETIME()"))
    with pytest.raises(TransientSourceError) as raised:
        client(con, sqlserver_target(query_timeout=45)).clock()
    message = str(raised.value)
    assert "query_timeout (45 s)" in message and QUERY_TIMEOUT_SETTING in message, message
    assert "timeout=0" in con.names()  # left as the connection came (dbt-sqlserver sets it)
