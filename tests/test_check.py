"""`exigo-sync check` (exigo_sync.check.run_checks): the SQL Server checks through the
recording DB-API double of tests/sqlserver/doubles.py, the DuckDB checks on a real
simulator file and warehouse file.

What a double cannot prove: that SQL Server answers HAS_PERMS_BY_NAME as scripted here (the
live tests in tests/sqlserver/ run the checks against a server when one is configured).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyodbc
import pytest

from exigo_sync import check
from exigo_sync.profiles import Target
from exigo_sync.warehouse import ledger_sql
from tests.sqlserver.doubles import Outcome, RecordingDriver, odbc_error
from tests.sqlserver.targets import PASSWORD, sqlserver_target
from tests.sqlserver.tsql import parse_tsql

REPO_PROFILE = Path(check.__file__).resolve().parents[2] / "profiles.example.yml"

NAMES = [
    "driver",
    "source login",
    "source: EXECUTE on queue.Refresh",
    "source: SELECT on queue",
    "source: SELECT on dbo",
    "warehouse login",
    "warehouse: DDL rights",
    "clock skew",
    "data clock",
]


def by_name(results: list[check.CheckResult]) -> dict[str, check.CheckResult]:
    return {r.name: r for r in results}


# --- SQL Server, through the recording double -----------------------------------------------


class Server:
    """Scripted answers of one SQL Server database to the check queries."""

    def __init__(self, **answers: Any) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        self.answers = {
            "version": "16.0.4135.4",
            "login": "exigo_reader",
            "now": now + timedelta(hours=1),
            "utc": now,
            "execute": 1,
            "schema_select": 1,
            "object_select": {},  # "queue.Customers" -> 0/1; default 1
            "db_rights": (1, 1, 1),
            "schemas": {},  # schema -> (schema_id, alter); default (5, 1)
            **answers,
        }

    def __call__(self, sql: str, params: tuple) -> Outcome:
        a = self.answers
        if sql == check.LOGIN_SQL:
            return [[(a["version"], a["database"], a["login"], a["now"])]]
        if sql == check.EXECUTE_SQL:
            return [[(a["execute"],)]]
        if sql == check.SCHEMA_SELECT_SQL:
            return [[(a["schema_select"],)]]
        if sql == check.OBJECT_SELECT_SQL:
            return [[(a["object_select"].get(params[0], 1),)]]
        if sql == check.DATABASE_RIGHTS_SQL:
            return [[a["db_rights"]]]
        if sql == check.SCHEMA_RIGHTS_SQL:
            return [[a["schemas"].get(params[0], (5, 1))]]
        if sql == check.CLOCK_SQL:
            utc = a["utc"] if not callable(a["utc"]) else a["utc"]()
            return [[(utc, utc + timedelta(hours=1))]]
        if sql == ledger_sql.LEDGER_COLUMNS:  # the data clock's ledger: none yet
            return [[]]
        raise AssertionError(f"unexpected SQL: {sql}")


class Servers:
    """The `connect(target, database)` seam: one recording driver per database."""

    def __init__(self, **servers: Server) -> None:
        for db, server in servers.items():
            server.answers.setdefault("database", db)
        self.drivers = {db: RecordingDriver(server) for db, server in servers.items()}
        self.opened: list[tuple[str, str | None]] = []

    def __call__(self, target: Target, database: str | None) -> Any:
        db = database or target.config["database"]
        self.opened.append((target.name, database))
        return self.drivers[db].open()


def freetds_target(**extra: Any) -> Target:
    return sqlserver_target(driver="FreeTDS", **extra)


@pytest.fixture
def freetds() -> None:
    if "FreeTDS" not in pyodbc.drivers():
        pytest.skip("FreeTDS ODBC driver (tdsodbc) not installed")


def test_sqlserver_all_checks_pass_in_the_co_located_topology(freetds: None) -> None:
    """Proves the happy path and the co-located topology: one warehouse target, the source
    checks run on a second connection to the sync database (`source_database`), the warehouse
    checks on the target's own database; every check passes, in order, and every connection is
    closed. The driver check is real (pyodbc + FreeTDS installed here)."""
    servers = Servers(ExigoSync=Server(), exigo_warehouse=Server())
    target = freetds_target()
    results = check.run_checks(target, target, "ExigoSync", connect=servers)
    assert [r.name for r in results] == NAMES
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert servers.opened == [("sqlserver", "ExigoSync"), ("sqlserver", None)]
    assert all(c.closed for d in servers.drivers.values() for c in d.connections)
    r = by_name(results)
    assert r["driver"].detail.startswith("pyodbc ") and "'FreeTDS'" in r["driver"].detail
    assert "sql.example.internal,1433/ExigoSync as exigo_reader" in r["source login"].detail
    assert "UTC+01:00" in r["clock skew"].detail


def test_sqlserver_checks_send_the_expected_tsql(freetds: None) -> None:
    """Proves which statements the checks send (permission probes with the securable as a
    bound parameter) and that each parses as T-SQL with sqlglot (no Command fallback)."""
    servers = Servers(ExigoSync=Server(schema_select=0), exigo_warehouse=Server())
    target = freetds_target()
    check.run_checks(target, target, "ExigoSync", connect=servers)
    source_calls = servers.drivers["ExigoSync"].log.calls
    sent = {c.sql for d in servers.drivers.values() for c in d.log.calls}
    assert sent == {
        check.LOGIN_SQL, check.EXECUTE_SQL, check.SCHEMA_SELECT_SQL, check.OBJECT_SELECT_SQL,
        check.DATABASE_RIGHTS_SQL, check.SCHEMA_RIGHTS_SQL, check.CLOCK_SQL,
        ledger_sql.LEDGER_COLUMNS,
    }  # fmt: skip
    probed = [c.params[0] for c in source_calls if c.sql == check.OBJECT_SELECT_SQL]
    assert probed[:6] == [f"queue.{t}" for t in check.SOURCE_TABLES["queue"]]
    assert "dbo.OrderStatuses" in probed
    for sql in sent:
        parse_tsql(sql)


def test_sqlserver_missing_rights_are_named_with_a_grant(freetds: None) -> None:
    """Proves the failing permission checks say what is missing and how to grant it: no
    EXECUTE, a queue table without SELECT (no schema grant), a warehouse schema without ALTER,
    a missing schema without CREATE SCHEMA."""
    source = Server(
        execute=0, schema_select=0, object_select={"queue.Payments": 0, "queue.Orders": 0}
    )
    warehouse = Server(
        db_rights=(1, 1, 0), schemas={"exigo_history": (9, 0), "exigo_marts": (None, None)}
    )
    servers = Servers(ExigoSync=source, exigo_warehouse=warehouse)
    target = freetds_target()
    r = by_name(check.run_checks(target, target, "ExigoSync", connect=servers))
    assert not r["source: EXECUTE on queue.Refresh"].ok
    assert "GRANT EXECUTE ON OBJECT::queue.Refresh" in r["source: EXECUTE on queue.Refresh"].hint
    queue = r["source: SELECT on queue"]
    assert not queue.ok and "queue.Orders, queue.Payments" in queue.detail
    assert r["source: SELECT on dbo"].ok  # every table granted one by one
    ddl = r["warehouse: DDL rights"]
    assert not ddl.ok
    assert "ALTER on schema exigo_history" in ddl.detail
    assert "CREATE SCHEMA (for exigo_marts)" in ddl.detail
    assert r["source login"].ok and r["warehouse login"].ok


def test_sqlserver_missing_procedure_is_told_apart_from_missing_grant(freetds: None) -> None:
    """Proves HAS_PERMS_BY_NAME's NULL (no such object) is reported as a wrong database."""
    servers = Servers(ExigoSync=Server(execute=None), exigo_warehouse=Server())
    target = freetds_target()
    r = by_name(check.run_checks(target, target, "ExigoSync", connect=servers))
    assert "not found in database 'ExigoSync'" in r["source: EXECUTE on queue.Refresh"].detail


def test_sqlserver_each_check_survives_the_others_failing() -> None:
    """Proves the list always completes: an uninstalled ODBC driver fails the driver check, a
    login refused with a message quoting the password fails the source login (scrubbed) and
    skips the source checks that need it, while the warehouse checks still run and pass."""
    refused = odbc_error(
        pyodbc.InterfaceError, "28000", 18456, f"Login failed for user 'x' ('{PASSWORD}')."
    )
    servers = Servers(exigo_warehouse=Server())

    def connect(target: Target, database: str | None) -> Any:
        if database == "ExigoSync":
            raise refused
        return servers(target, database)

    target = sqlserver_target(driver="ODBC Driver 99 for SQL Server")
    results = check.run_checks(target, target, "ExigoSync", connect=connect)
    assert [r.name for r in results] == NAMES
    r = by_name(results)
    assert not r["driver"].ok and "not installed" in r["driver"].detail
    assert "msodbcsql18" in r["driver"].hint
    login = r["source login"]
    assert not login.ok and "native error 18456" in login.detail
    assert "user / password" in login.hint
    for name in ("source: EXECUTE on queue.Refresh", "source: SELECT on queue", "clock skew"):
        assert not r[name].ok and r[name].detail.startswith("skipped"), name
    assert r["warehouse login"].ok and r["warehouse: DDL rights"].ok
    blob = repr(results)
    assert PASSWORD not in blob and "***" in blob


def test_sqlserver_unreachable_warehouse_is_a_failed_check_not_a_crash(freetds: None) -> None:
    """Proves a transient failure (server not answering) reads as such, with a hint."""
    timeout = odbc_error(pyodbc.OperationalError, "HYT00", 0, "Login timeout expired")
    servers = Servers(ExigoSync=Server())

    def connect(target: Target, database: str | None) -> Any:
        if database is None:
            raise timeout
        return servers(target, database)

    target = freetds_target()
    r = by_name(check.run_checks(target, target, "ExigoSync", connect=connect))
    assert not r["warehouse login"].ok and "SQLSTATE HYT00" in r["warehouse login"].detail
    assert "did not answer" in r["warehouse login"].hint
    assert r["source login"].ok and r["source: SELECT on dbo"].ok


def test_clock_skew_beyond_the_limit_fails(freetds: None) -> None:
    """Proves the skew check: a source clock 5 minutes ahead of the warehouse (both measured
    against this host) fails, naming the skew; within a second it passes."""

    def utc_now(ahead: timedelta = timedelta(0)) -> Any:
        return lambda: datetime.now(UTC).replace(tzinfo=None) + ahead

    servers = Servers(
        ExigoSync=Server(utc=utc_now(timedelta(minutes=5))), exigo_warehouse=Server(utc=utc_now())
    )
    target = freetds_target()
    skew = by_name(check.run_checks(target, target, "ExigoSync", connect=servers))["clock skew"]
    assert not skew.ok and "source is +300." in skew.detail and "NTP" in skew.hint
    servers = Servers(ExigoSync=Server(utc=utc_now()), exigo_warehouse=Server(utc=utc_now()))
    assert by_name(check.run_checks(target, target, "ExigoSync", connect=servers))["clock skew"].ok


def test_freetds_clock_as_text_fails_the_login_check(freetds: None) -> None:
    """Proves the TDS-version symptom (SYSDATETIME() as text under TDS < 7.3) fails the login
    check with the freetds.conf fix."""
    servers = Servers(ExigoSync=Server(now="2026-01-05 10:00:00.1234567"), exigo_warehouse=Server())
    target = freetds_target()
    login = by_name(check.run_checks(target, target, "ExigoSync", connect=servers))["source login"]
    assert not login.ok and "tds version = 7.4" in login.hint


def test_freetds_tdsver_too_old_fails_the_driver_check(
    freetds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves TDSVER=7.1 (what FreeTDS's "8.0" means) is caught before any connection."""
    monkeypatch.setenv("TDSVER", "7.1")
    servers = Servers(ExigoSync=Server(), exigo_warehouse=Server())
    target = freetds_target()
    driver = by_name(check.run_checks(target, target, "ExigoSync", connect=servers))["driver"]
    assert not driver.ok and "TDSVER=7.1" in driver.detail


def test_mssql_python_driver_check_loads_the_bundled_driver() -> None:
    """Proves the mssql-python driver check imports the module and dlopens its bundled ODBC
    Driver 18 (which fails where libltdl7 / libkrb5-3 / libgssapi-krb5-2 are missing; that
    failure was produced by hand here by hiding those libraries, not in this test)."""
    pytest.importorskip("mssql_python")
    target = sqlserver_target(backend="mssql-python")
    servers = Servers(exigo_warehouse=Server())
    driver = by_name(check.run_checks(target, target, None, connect=servers))["driver"]
    assert driver.ok, driver
    assert driver.detail.startswith("mssql-python ") and "msodbcsql18" in driver.detail


# --- DuckDB ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from exigo_sync.simulator import SyncSimulator

    path = tmp_path_factory.mktemp("check") / "exigo_source.duckdb"
    SyncSimulator.create(path, seed=3, customers=30, clock_start=datetime(2026, 1, 5))
    return path


def duckdb_target(source: Path, warehouse: Path) -> Target:
    config = {
        "type": "duckdb",
        "path": str(warehouse),
        "attach": [{"path": str(source), "alias": "exigo", "read_only": True}],
    }
    return Target("duckdb", "duckdb", config)


def test_duckdb_all_checks_pass(simulator_file: Path, tmp_path: Path) -> None:
    """Proves the DuckDB meaning of every check on a real simulator file and a warehouse that
    does not exist yet (its folder is writable): all pass, in the same order and names."""
    target = duckdb_target(simulator_file, tmp_path / "wh" / "warehouse.duckdb")
    results = check.run_checks(target, target)
    assert [r.name for r in results] == NAMES
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    r = by_name(results)
    assert r["driver"].detail.startswith("duckdb ")
    assert "simulated clock 2026-01-05" in r["source login"].detail
    assert "the first run creates it" in r["warehouse login"].detail
    assert "the first run creates the file" in r["warehouse: DDL rights"].detail
    assert "does not apply" in r["clock skew"].detail


def test_duckdb_missing_source_and_locked_warehouse(simulator_file: Path, tmp_path: Path) -> None:
    """Proves the DuckDB failures: a source path that does not exist fails the source login
    and skips the checks that need it; a warehouse file held by another process (a real second
    process) fails the warehouse login as in use; nothing crashes."""
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = _hold_open(warehouse)
    try:
        target = duckdb_target(tmp_path / "no-such-source.duckdb", warehouse)
        r = by_name(check.run_checks(target, target))
    finally:
        holder.kill()
        holder.wait()
    assert not r["source login"].ok and "not found" in r["source login"].detail
    assert "exigo-sync simulate create" in r["source login"].hint
    assert r["source: SELECT on queue"].detail.startswith("skipped")
    assert r["source: SELECT on queue"].skipped and not r["source: SELECT on queue"].hint
    assert (
        not r["warehouse login"].ok and "in use by another process" in r["warehouse login"].detail
    )
    assert r["driver"].ok


def test_a_failing_check_has_the_hint_on_its_own_line_and_the_checks_it_blocks_are_skipped(
    tmp_path: Path,
) -> None:
    """`exigo-sync check` as printed: the hint sits under the failing line (naming what sets
    the missing file and how to make one), the checks that needed it say `skip` with no hint of
    their own, and every path is absolute although the profile's is relative."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(REPO_PROFILE.read_text())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXIGO_SYNC_")}
    env["EXIGO_SYNC_PROFILES_DIR"] = str(profiles)
    proc = subprocess.run(
        [sys.executable, "-m", "exigo_sync.cli", "check"], cwd=elsewhere, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    login = next(i for i, line in enumerate(lines) if "source login" in line)
    missing = profiles / "data" / "exigo_source.duckdb"
    assert lines[login].startswith("FAIL") and str(missing) in lines[login]
    assert lines[login + 1].strip().startswith("hint: set EXIGO_SYNC_SOURCE_PATH")
    assert f"exigo-sync simulate create {missing}" in lines[login + 1]
    skipped = [line for line in lines if line.startswith("skip")]
    assert skipped and all("hint" not in line for line in skipped)
    assert sum("hint:" in line for line in lines) == 1
    assert lines[0].startswith("topology:") and str(missing) in lines[0]
    assert lines[1].startswith("ok   dbt project and flow: " + str(REPO_PROFILE.parent))


def test_duckdb_warehouse_login_and_ddl_rights_prove_different_things(
    simulator_file: Path, tmp_path: Path
) -> None:
    """On an existing file the login opens it (read-only, a moment); DDL rights really create
    a schema, a table and a view, in a transaction rolled back: nothing is left behind."""
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    target = duckdb_target(simulator_file, warehouse)
    r = by_name(check.run_checks(target, target))
    assert r["warehouse login"].ok and r["warehouse login"].detail.endswith(")")
    assert "opens (DuckDB" in r["warehouse login"].detail
    ddl = r["warehouse: DDL rights"]
    assert ddl.ok and "CREATE SCHEMA, TABLE and VIEW" in ddl.detail
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()
        schemas = {row[0] for row in rows}
    finally:
        con.close()
    assert "exigo_sync_check" not in schemas


def test_check_names_the_dbt_project_and_the_flow_or_what_is_missing(tmp_path: Path) -> None:
    ok = check._project_and_flow(REPO_PROFILE.parent / "dbt_project")
    assert ok.ok and "models" in ok.detail and "exigo_sync/flow.py" in ok.detail
    missing = check._project_and_flow(tmp_path)
    assert not missing.ok and f"no dbt_project.yml in {tmp_path}" in missing.detail
    assert "reinstall exigo-sync" in missing.hint


def test_check_during_a_batch_reads_its_live_status_and_leaves_the_warehouse_alone(
    simulator_file: Path, tmp_path: Path
) -> None:
    """A batch of exigo-sync's holds the file (its live status names this live process):
    the login says so without opening the file (another process holds it here, so an open
    would fail), and DDL rights are skipped."""
    import duckdb

    from exigo_sync.warehouse import live_status

    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    target = duckdb_target(simulator_file, warehouse)
    status = live_status.LiveStatus.begin(lock_name="l", token="t", flow_run_id=None, step="dbt")
    live_status.write(live_status.path_for(target), status.at_step("dbt", 7))
    holder = _hold_open(warehouse)
    try:
        r = by_name(check.run_checks(target, target))
    finally:
        holder.kill()
        holder.wait()
    assert r["warehouse login"].ok and "in use by a batch: batch 7 running: step dbt" in (
        r["warehouse login"].detail
    )
    assert r["warehouse: DDL rights"].skipped and r["data clock"].skipped


def _hold_open(warehouse: Path) -> subprocess.Popen[str]:
    """A real second process holding the DuckDB warehouse file open (its single writer)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time
            con = duckdb.connect({str(warehouse)!r})
            print("held", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_duckdb_path_never_imports_the_sqlserver_drivers(
    simulator_file: Path, tmp_path: Path
) -> None:
    """Proves, in a fresh interpreter, that importing every SQL Server module of exigo-sync and
    running the DuckDB checks and the DuckDB source client's query() loads neither pyodbc nor
    mssql_python."""
    code = textwrap.dedent(f"""
        import sys
        import exigo_sync.check, exigo_sync.sqlserver
        import exigo_sync.source.sqlserver_client, exigo_sync.warehouse.sqlserver_engine
        from exigo_sync.profiles import Target
        from exigo_sync.source.duckdb_client import DuckDbSourceClient
        t = Target("duckdb", "duckdb", {{"path": {str(tmp_path / "wh.duckdb")!r},
            "attach": [{{"path": {str(simulator_file)!r}, "alias": "exigo"}}]}})
        assert all(r.ok for r in exigo_sync.check.run_checks(t, t))
        with DuckDbSourceClient({str(simulator_file)!r}).query("SELECT 1") as cur:
            assert cur.fetchall() == [(1,)]
        print(sorted(m for m in ("pyodbc", "mssql_python") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
