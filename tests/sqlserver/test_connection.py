"""SQL Server connections as dbt-sqlserver opens them (exigo_sync.sqlserver.connection), short of
a server: the credentials dbt builds from the profile, the connection string and session
settings, retries of a transient login failure, and a bad target refused before connecting. The
driver is the recording double of tests/sqlserver/doubles.py standing in for the pyodbc module;
the real drivers against a closed port: tests/source/test_sqlserver_client.py; a real login: the
live tests."""

from __future__ import annotations

import pyodbc
import pytest

from exigo_sync import sqlserver as mssql
from tests.sqlserver.doubles import RecordingDriver, odbc_error
from tests.sqlserver.targets import PASSWORD, sqlserver_target


def test_credentials_are_the_ones_dbt_builds_from_the_profile() -> None:
    """Proves exigo-sync reads the target exactly as dbt does: same aliases (server, user,
    password, trusted_connection, auth, TrustServerCertificate), same defaults (encrypt true,
    port 1433, retries 3, xact_abort), compared with dbt's own profile loader. Cannot prove
    anything about a dbt-sqlserver version other than the one pinned."""
    from dbt.config.profile import Profile

    for extra in ({}, {"auth": "ActiveDirectoryServicePrincipal", "tenant_id": "t",
                       "client_id": "c", "client_secret": "s3cr3t-client"},
                  {"TrustServerCertificate": True, "login_timeout": 7, "query_timeout": 30},
                  {"backend": "mssql-python"}):  # fmt: skip
        target = sqlserver_target(**extra)
        ours = mssql.credentials(target)
        raw = {k: v for k, v in target.config.items() if k != "threads"}
        dbts = Profile._credentials_from_profile(raw, "exigo_sync", "sqlserver")
        assert ours.to_dict() == dbts.to_dict()
    creds = mssql.credentials(sqlserver_target(), database="ExigoSync")
    assert (creds.database, creds.host, creds.UID, creds.encrypt, creds.port) == (
        "ExigoSync", "sql.example.internal", "exigo_reader", True, 1433
    )  # fmt: skip


def test_connect_uses_dbt_sqlserver_connection_string_and_session() -> None:
    """Proves connect() through the module seam: dbt-sqlserver's connection string (driver,
    server,port, the overriding database, encrypt default Yes, APP=dbt-sqlserver), autocommit
    on, login timeout, pooling, query timeout on the handle, SET XACT_ABORT ON, and no retry of
    a permanent login failure but retries of a transient one. Cannot prove the driver accepts
    the string (the FreeTDS / mssql-python tests below reach a real driver)."""
    driver = RecordingDriver()
    target = sqlserver_target(login_timeout=9, query_timeout=120)
    con = mssql.connect(target, database="ExigoSync", module=driver)
    (args, kwargs) = driver.connect_calls[0]
    con_str = args[0]
    assert con_str.startswith("DRIVER={ODBC Driver 18 for SQL Server};")
    assert "SERVER=sql.example.internal,1433;Database=ExigoSync;" in con_str
    assert "encrypt=Yes;TrustServerCertificate=No;APP=dbt-sqlserver/" in con_str
    assert kwargs["autocommit"] is True and kwargs["timeout"] == 9
    assert driver.pooling is True
    assert con.timeout == 120
    assert driver.log.sql() == ["SET XACT_ABORT ON"]

    sleeps: list[float] = []
    flaky = RecordingDriver()
    flaky.connect_errors = [odbc_error(pyodbc.OperationalError, "08001", 10060, "timeout")] * 2
    mssql.connect(sqlserver_target(), module=flaky, sleep=sleeps.append)
    assert len(flaky.connect_calls) == 3 and sleeps == [1.0, 1.0]

    denied = RecordingDriver()
    denied.connect_errors = [odbc_error(pyodbc.InterfaceError, "28000", 18456, "Login failed")]
    with pytest.raises(pyodbc.InterfaceError):
        mssql.connect(sqlserver_target(), module=denied, sleep=sleeps.append)
    assert len(denied.connect_calls) == 1

    no_abort = RecordingDriver()
    mssql.connect(sqlserver_target(xact_abort=False), module=no_abort)
    assert no_abort.log.sql() == []


def test_invalid_target_is_a_config_error_without_secrets() -> None:
    """Proves a bad profile (no driver for pyodbc, a non-integer port) fails before any
    connection with a ProfileError that does not quote the password."""
    with pytest.raises(mssql.SqlServerConfigError, match="driver"):
        mssql.connect(sqlserver_target(driver=None), module=RecordingDriver())
    with pytest.raises(mssql.SqlServerConfigError) as raised:
        mssql.connect(sqlserver_target(port=PASSWORD), module=RecordingDriver())
    assert PASSWORD not in str(raised.value)
