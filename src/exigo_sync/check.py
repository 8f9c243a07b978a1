"""The checks behind `exigo-sync check`: can this machine run a batch against the source and the
warehouse the dbt profile names, with the rights a batch needs?

`run_checks(warehouse, source, source_database)` returns one `CheckResult` per check, in order:

- dbt project and flow (when `dbt_project` is given): the dbt project a batch builds is there
  (dbt_project.yml, its models and macros), and so is the flow module (`exigo_sync.flow`, the
  deployments' entrypoint): an installed package ships both.
- driver: SQL Server: the backend (pyodbc and the ODBC driver unixODBC knows, or mssql-python and
  the system libraries its bundled driver needs), versions. DuckDB: duckdb's version.
- source login: the sync database accepts the login (server version, login name; SYSDATETIME()
  must come back as a datetime: FreeTDS speaks TDS >= 7.3). DuckDB: the simulator file exists
  and is a simulator.
- source: EXECUTE on queue.Refresh: HAS_PERMS_BY_NAME on the procedure. DuckDB: the file is
  writable and no other process holds it (queue.Refresh writes it).
- source: SELECT on queue / dbo: on the schema, else on each table dbt reads. DuckDB: the tables
  are there.
- warehouse login: the warehouse database accepts the login. DuckDB: the file opens (read-only,
  for a moment: no other process holds it), or does not exist yet; while a batch of exigo-sync's
  holds it, its live status says so and the file is not opened.
- warehouse: DDL rights: CREATE TABLE and VIEW, ALTER on each existing exigo_* schema, CREATE
  SCHEMA for the missing ones. DuckDB: CREATE SCHEMA, TABLE and VIEW succeed in a transaction
  that is rolled back; a file not created yet: its folder is writable.
- clock skew: source vs warehouse SYSUTCDATETIME(), both measured against this host. DuckDB
  source: the simulator's clock is simulated, skew does not apply.
- data clock: what the latest merged batch measured of the server's and the data's clocks (W1),
  from the ledger; skipped while a batch of exigo-sync's holds a DuckDB file.

Every check survives the others failing: a missing driver or a refused login turns its own
check red (with the hint under it) and marks those that need that connection skipped, never the
whole list. Messages are one line,
secret-free (the target's scrub, S1). pyodbc / mssql_python are imported only for a SQL Server
target.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from exigo_sync import sqlserver as mssql
from exigo_sync.catalog import LOOKUP_TABLES, QUEUE_TABLES, REPLICATED_TABLES
from exigo_sync.profiles import Target
from exigo_sync.warehouse import ledger_sql

# The schemas a batch creates or writes in the warehouse: the ledger's and the dbt layers'
# (dbt_project.yml `+schema`, used as-is by the project's generate_schema_name).
WAREHOUSE_SCHEMAS = (
    ledger_sql.SCHEMA,
    "exigo_staging",
    "exigo_history",
    "exigo_current",
    "exigo_marts",
)
# Tables dbt reads from the sync database, per schema.
SOURCE_TABLES = {
    "queue": tuple(QUEUE_TABLES),
    "dbo": (*REPLICATED_TABLES, *LOOKUP_TABLES),
}
# Above this, source and warehouse clocks disagree enough to confuse anyone comparing them.
SKEW_LIMIT = timedelta(seconds=60)

LOGIN_SQL = (
    "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), DB_NAME(), "
    "SUSER_SNAME(), SYSDATETIME()"
)
EXECUTE_SQL = "SELECT HAS_PERMS_BY_NAME('queue.Refresh', 'OBJECT', 'EXECUTE')"
SCHEMA_SELECT_SQL = "SELECT HAS_PERMS_BY_NAME(?, 'SCHEMA', 'SELECT')"
OBJECT_SELECT_SQL = "SELECT HAS_PERMS_BY_NAME(?, 'OBJECT', 'SELECT')"
DATABASE_RIGHTS_SQL = (
    "SELECT HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE TABLE'), "
    "HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE VIEW'), "
    "HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE SCHEMA')"
)
SCHEMA_RIGHTS_SQL = "SELECT SCHEMA_ID(?), HAS_PERMS_BY_NAME(?, 'SCHEMA', 'ALTER')"
CLOCK_SQL = "SELECT SYSUTCDATETIME(), SYSDATETIME()"

Connector = Callable[[Target, str | None], Any]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # one line
    hint: str = ""  # what to do when not ok
    skipped: bool = False  # not run: a check it needs failed (that one carries the hint)


class _Skip(Exception):
    """A check that cannot run because an earlier one failed."""


@dataclass
class _Side:
    """One end (source or warehouse) and, once logged in, its open connection."""

    role: str  # "source" | "warehouse"
    target: Target
    database: str | None
    ready: bool = False  # the login check passed
    con: Any = None  # SQL Server: the open DB-API connection
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sqlserver(self) -> bool:
        return self.target.type == "sqlserver"

    def connection(self) -> Any:
        if not self.ready:
            raise _Skip(f"skipped: the {self.role} login check failed")
        return self.con


def run_checks(
    warehouse: Target,
    source: Target,
    source_database: str | None = None,
    *,
    connect: Connector | None = None,
    source_file: Path | None = None,
    source_setting: str = "",
    dbt_project: Path | None = None,
    stale_after: timedelta = timedelta(minutes=10),
) -> list[CheckResult]:
    """Every check, in order. `source` may be the warehouse target itself (co-located topology,
    with `source_database` the sync database's name). `source_file`: a DuckDB source's
    simulator file, when it is not the warehouse's `exigo` attachment; `source_setting`: what
    sets its path (exigo_sync.topology), for the hint. `dbt_project`: the dbt project a batch
    builds (checked with the flow). `stale_after`: the lock's stale time (Settings), after which
    a silent batch on another host no longer counts as running. `connect(target, database)`
    opens a DB-API connection (default: dbt-sqlserver's way, without retries); tests pass a
    double."""
    opener = connect or _default_connect
    src = _Side("source", source, source_database or source.config.get("database"))
    if source_file is not None:
        src.extra["path"] = source_file
    src.extra["setting"] = source_setting
    wh = _Side("warehouse", warehouse, None)
    wh.extra["stale_after"] = stale_after
    results: list[CheckResult] = []

    def run(name: str, side: _Side | None, check: Callable[[], CheckResult]) -> None:
        try:
            results.append(check())
        except _Skip as skip:
            results.append(CheckResult(name, False, str(skip), skipped=True))
        except Exception as exc:
            results.append(_failure(name, side, exc))

    try:
        if dbt_project is not None:
            run("dbt project and flow", None, lambda: _project_and_flow(dbt_project))
        for target in _distinct_backends(warehouse, source):
            run("driver", None, lambda t=target: _driver(t))
        run("source login", src, lambda: _login(src, opener))
        run("source: EXECUTE on queue.Refresh", src, lambda: _execute_refresh(src))
        for schema in SOURCE_TABLES:
            run(f"source: SELECT on {schema}", src, lambda s=schema: _select(src, s))
        run("warehouse login", wh, lambda: _login(wh, opener))
        run("warehouse: DDL rights", wh, lambda: _ddl_rights(wh))
        run("clock skew", None, lambda: _clock_skew(src, wh))
        run("data clock", wh, lambda: _data_clock(wh))
    finally:
        for side in (src, wh):
            if side.con is not None:
                with suppress(Exception):
                    side.con.close()
    return results


def _data_clock(side: _Side) -> CheckResult:
    """W1: what the latest merged batch measured of the sync server's clock and the data's
    (read from the ledger, read-only; before the first batch there is nothing to show). Not
    while a batch of exigo-sync's holds a DuckDB file (`exigo-sync status` shows that batch)."""
    from exigo_sync.warehouse.ledger import Ledger
    from exigo_sync.window import describe_clocks

    if "batch" in side.extra:
        raise _Skip("skipped: a batch is writing the warehouse now (exigo-sync status shows it)")
    con = side.connection()
    warehouse = side.target
    if side.sqlserver:  # on the login check's connection (what `connect` opened)
        from exigo_sync.warehouse.sqlserver_engine import SqlServerWarehouse

        ledger = Ledger(SqlServerWarehouse(con, warehouse), read_only=True)
        detail = ledger.watermark_detail() if ledger.exists() else None
        return CheckResult("data clock", True, describe_clocks(detail))
    if warehouse.type == "duckdb" and not warehouse.warehouse_path().exists():
        return CheckResult("data clock", True, describe_clocks(None))
    with Ledger.open(warehouse, read_only=True) as ledger:
        detail = ledger.watermark_detail() if ledger.exists() else None
    return CheckResult("data clock", True, describe_clocks(detail))


def _default_connect(target: Target, database: str | None) -> Any:
    return mssql.connect(target, database=database, retries=0)


def _distinct_backends(*targets: Target) -> list[Target]:
    seen: dict[tuple, Target] = {}
    for t in targets:
        key = (t.type, t.config.get("backend", "pyodbc"), t.config.get("driver"))
        seen.setdefault(key, t)
    return list(seen.values())


def _failure(name: str, side: _Side | None, exc: BaseException) -> CheckResult:
    target = side.target if side is not None else None
    if target is not None and mssql.is_driver_error(exc):
        action = "log in" if name.endswith("login") else f"check {name}"
        detail = mssql.describe(exc, target, action, database=side.database if side else None)
        info = mssql.driver_error(exc)
        if 18456 in info.numbers:
            hint = "check the profile's user / password / authentication"
        elif 4060 in info.numbers:
            hint = f"check that database '{side.database if side else '?'}' exists on the server"
        elif mssql.classify(exc) == "transient":
            hint = "the server did not answer: check server, port, firewall, and that it runs"
        else:
            hint = "see the server's message"
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
        detail = target.scrub(text) if target is not None else text
        hint = ""
    return CheckResult(name, False, detail, hint)


# --- what a batch runs ---------------------------------------------------------------------------


def _project_and_flow(project: Path) -> CheckResult:
    import importlib.util

    name = "dbt project and flow"
    hint = "reinstall exigo-sync (the package ships both), or set EXIGO_SYNC_DBT_PROJECT_DIR"
    if not (project / "dbt_project.yml").is_file():
        return CheckResult(name, False, f"no dbt_project.yml in {project}", hint)
    models = len(list((project / "models").rglob("*.sql")))
    macros = len(list((project / "macros").rglob("*.sql")))
    if not models or not macros:
        return CheckResult(
            name, False, f"{project} has {models} models and {macros} macro files", hint
        )
    spec = importlib.util.find_spec("exigo_sync.flow")
    if spec is None or spec.origin is None:
        return CheckResult(name, False, f"{project} is there, the flow module is not", hint)
    return CheckResult(
        name, True, f"{project} ({models} models, {macros} macro files); flow {spec.origin}"
    )


# --- driver --------------------------------------------------------------------------------------


def _driver(target: Target) -> CheckResult:
    if target.type != "sqlserver":
        import duckdb

        return CheckResult("driver", True, f"duckdb {duckdb.__version__} (embedded)")
    creds = mssql.credentials(target)
    if mssql.backend(creds) == "mssql-python":
        return _mssql_python_driver()
    return _pyodbc_driver(creds)


def _pyodbc_driver(creds: Any) -> CheckResult:
    pyodbc = mssql.driver_module("pyodbc")
    installed = list(pyodbc.drivers())
    wanted = str(creds.driver or "").strip("{}")
    have = ", ".join(installed) or "none"
    head = f"pyodbc {pyodbc.version}, ODBC driver '{wanted}' (unixODBC lists: {have})"
    if not wanted:
        return CheckResult("driver", False, "the profile names no `driver`", _DRIVER_HINT)
    found = Path(wanted).is_file() if "/" in wanted else wanted in installed
    if not found:
        return CheckResult("driver", False, f"{head}: not installed", _DRIVER_HINT)
    if "freetds" in wanted.lower():
        tdsver = os.environ.get("TDSVER")
        if tdsver and _tds_version(tdsver) < (7, 3):
            return CheckResult(
                "driver", False, f"{head}; TDSVER={tdsver} cannot carry datetime2", _TDS_HINT
            )
        head += f"; TDS version {'TDSVER=' + tdsver if tdsver else 'from freetds.conf'}"
    return CheckResult("driver", True, head)


def _mssql_python_driver() -> CheckResult:
    import ctypes

    module = mssql.driver_module("mssql-python")
    version = getattr(module, "__version__", "?")
    info = getattr(module, "get_native_provider_info", dict)()
    path = info.get("driver_path")
    head = f"mssql-python {version}, bundled driver {info.get('id', '?')} {info.get('version', '')}"
    if path:
        try:
            ctypes.CDLL(path)  # what mssql_python's loader dlopens at the first connect
        except OSError as exc:
            detail = f"{head.strip()}: cannot load it ({exc})"
            return CheckResult("driver", False, detail, _MSSQL_PYTHON_HINT)
    return CheckResult("driver", True, head.strip())


def _tds_version(text: str) -> tuple[int, ...]:
    with suppress(ValueError):
        return tuple(int(p) for p in text.split("."))
    return (99,)  # "auto": FreeTDS negotiates the highest the server speaks


_DRIVER_HINT = (
    "install Microsoft's msodbcsql18 (and set `driver: ODBC Driver 18 for SQL Server`), or "
    "FreeTDS's tdsodbc with `driver: FreeTDS`, or use `backend: mssql-python`"
)
_TDS_HINT = "FreeTDS must speak TDS 7.3+: set TDSVER=7.4 or `tds version = 7.4` in freetds.conf"
_MSSQL_PYTHON_HINT = (
    "mssql-python's bundled ODBC driver needs system libraries: on Debian/Ubuntu "
    "`apt-get install libltdl7 libkrb5-3 libgssapi-krb5-2` (RHEL: libtool-ltdl krb5-libs)"
)


# --- logins --------------------------------------------------------------------------------------


def _login(side: _Side, opener: Connector) -> CheckResult:
    name = f"{side.role} login"
    if not side.sqlserver:
        return _duckdb_source_file(side) if side.role == "source" else _duckdb_warehouse(side)
    side.con = opener(side.target, side.database)
    cur = side.con.cursor()
    cur.execute(LOGIN_SQL)
    version, database, login, now = cur.fetchone()
    where = mssql.endpoint(side.target, database)
    detail = f"connected to {where} as {login} (SQL Server {version})"
    if not isinstance(now, datetime):
        return CheckResult(name, False, f"{detail}, but SYSDATETIME() came back as text", _TDS_HINT)
    side.ready = True
    return CheckResult(name, True, detail)


def _duckdb_source_file(side: _Side) -> CheckResult:
    from exigo_sync.source.duckdb_client import DuckDbSourceClient

    path = side.extra.get("path") or side.target.source_path()
    if not Path(path).is_file():
        setting = side.extra.get("setting") or f"edit {side.target.where()}"
        return CheckResult(
            "source login",
            False,
            f"the simulator file {path} is not found",
            f"{setting}; or create one there: exigo-sync simulate create {path}",
        )
    clock = DuckDbSourceClient(path).source_clock()  # checks: is a simulator
    side.extra.update(path=path, clock=clock)
    side.ready = True
    return CheckResult("source login", True, f"simulator file {path} (simulated clock {clock})")


def _duckdb_warehouse(side: _Side) -> CheckResult:
    """The DuckDB warehouse file opens: read-only and for a moment (a batch starting meanwhile
    waits for it), never while a batch of exigo-sync's holds it (its live status says so)."""
    import duckdb

    from exigo_sync.warehouse import live_status

    name = "warehouse login"
    path = side.target.warehouse_path()
    side.extra["path"] = path
    if not path.exists():
        folder = _existing_parent(path)
        if not os.access(folder, os.W_OK):
            return CheckResult(
                name, False, f"{path} does not exist and {folder} is not writable",
                f"make {folder} writable, or point the profile's `path` elsewhere",
            )  # fmt: skip
        side.ready = True
        return CheckResult(name, True, f"{path} does not exist yet: the first run creates it")
    running = live_status.running_batch(side.target, side.extra["stale_after"])
    if running is not None:
        side.extra["batch"] = running
        return CheckResult(name, True, f"{path} is in use by a batch: {running.describe()}")
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return CheckResult(
                name,
                False,
                f"{path} is in use by another process (not an exigo-sync batch)",
                "close the other DuckDB client (analysts: open the analytics copy instead)",
            )
        raise
    side.ready = True
    return CheckResult(name, True, f"{path} opens (DuckDB {duckdb.__version__})")


def _existing_parent(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


# --- source rights -------------------------------------------------------------------------------


def _execute_refresh(side: _Side) -> CheckResult:
    name = "source: EXECUTE on queue.Refresh"
    con = side.connection()
    if not side.sqlserver:
        return _duckdb_source_writable(side, name)
    allowed = _scalar(con, EXECUTE_SQL)
    if allowed == 1:
        return CheckResult(name, True, f"granted in database '{side.database}'")
    if allowed is None:
        return CheckResult(
            name,
            False,
            f"queue.Refresh not found in database '{side.database}' (or not visible to the login)",
            "is `source_database` the Exigo sync database?",
        )
    return CheckResult(
        name,
        False,
        f"EXECUTE on queue.Refresh is not granted in database '{side.database}'",
        "GRANT EXECUTE ON OBJECT::queue.Refresh TO <the profile's user>",
    )


def _duckdb_source_writable(side: _Side, name: str) -> CheckResult:
    import duckdb

    path: Path = side.extra["path"]
    if not os.access(path, os.W_OK):
        return CheckResult(name, False, f"{path} is not writable (queue.Refresh writes it)")
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return CheckResult(name, False, f"{path} is in use by another process")
        raise
    return CheckResult(name, True, f"{path} is writable (queue.Refresh runs in it)")


def _select(side: _Side, schema: str) -> CheckResult:
    name = f"source: SELECT on {schema}"
    con = side.connection()
    tables = SOURCE_TABLES[schema]
    if not side.sqlserver:
        present = _duckdb_tables(side, schema)
        missing = [t for t in tables if t not in present]
        if missing:
            return CheckResult(name, False, f"missing: {', '.join(missing)}")
        return CheckResult(name, True, f"{len(tables)} tables present")
    if _scalar(con, SCHEMA_SELECT_SQL, [schema]) == 1:
        return CheckResult(name, True, f"granted on schema {schema} in '{side.database}'")
    missing = [t for t in tables if _scalar(con, OBJECT_SELECT_SQL, [f"{schema}.{t}"]) != 1]
    if not missing:
        return CheckResult(name, True, f"granted on each of the {len(tables)} tables dbt reads")
    return CheckResult(
        name,
        False,
        f"no SELECT on {', '.join(f'{schema}.{t}' for t in missing)} in '{side.database}'",
        f"GRANT SELECT ON SCHEMA::{schema} TO <the profile's user>",
    )


def _duckdb_tables(side: _Side, schema: str) -> set[str]:
    from exigo_sync.source.duckdb_client import DuckDbSourceClient

    sql = (
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ?"
    )
    with DuckDbSourceClient(side.extra["path"]).query(sql, [schema]) as cur:
        return {r[0] for r in cur.fetchall()}


# --- warehouse rights ----------------------------------------------------------------------------


def _ddl_rights(side: _Side) -> CheckResult:
    name = "warehouse: DDL rights"
    if not side.sqlserver:
        return _duckdb_ddl(side, name)
    con = side.connection()
    create_table, create_view, create_schema = _row(con, DATABASE_RIGHTS_SQL)
    missing = [
        right
        for right, granted in (("CREATE TABLE", create_table), ("CREATE VIEW", create_view))
        if granted != 1
    ]
    existing, to_create = [], []
    for schema in WAREHOUSE_SCHEMAS:
        schema_id, alter = _row(con, SCHEMA_RIGHTS_SQL, [schema, schema])
        if schema_id is None:
            to_create.append(schema)
        elif alter != 1:
            missing.append(f"ALTER on schema {schema}")
        else:
            existing.append(schema)
    if to_create and create_schema != 1:
        missing.append(f"CREATE SCHEMA (for {', '.join(to_create)})")
    parts = []
    if existing:
        parts.append(f"ALTER on {', '.join(existing)}")
    if to_create:
        parts.append(f"{', '.join(to_create)} to be created")
    if missing:
        return CheckResult(
            name,
            False,
            f"missing: {'; '.join(missing)}",
            "GRANT CREATE TABLE, CREATE VIEW, CREATE SCHEMA TO <user>, and ALTER ON SCHEMA::"
            "<schema> (or make the user the schemas' owner / db_ddladmin)",
        )
    return CheckResult(name, True, "; ".join(["CREATE TABLE, CREATE VIEW", *parts]))


def _duckdb_ddl(side: _Side, name: str) -> CheckResult:
    """What a batch does to the file: schemas, tables and views, created in a transaction that
    is rolled back (nothing is left behind). A file not created yet: its folder is writable."""
    import duckdb

    if "batch" in side.extra:
        raise _Skip("skipped: a batch is writing the warehouse now (it has the rights)")
    side.connection()
    path: Path = side.extra["path"]
    if not path.exists():
        folder = _existing_parent(path)
        return CheckResult(
            name, True, f"{folder} is writable: the first run creates the file and its schemas"
        )
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        return CheckResult(
            name, False, f"{path} does not open for writing: {_first_line(exc)}",
            "make the file writable by this user",
        )  # fmt: skip
    try:
        con.begin()
        con.execute("CREATE SCHEMA exigo_sync_check")
        con.execute("CREATE TABLE exigo_sync_check.t (i INTEGER)")
        con.execute("CREATE VIEW exigo_sync_check.v AS SELECT i FROM exigo_sync_check.t")
        con.rollback()
    finally:
        con.close()
    return CheckResult(
        name, True, "CREATE SCHEMA, TABLE and VIEW succeed (in a transaction rolled back)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- clocks --------------------------------------------------------------------------------------


def _clock_skew(src: _Side, wh: _Side) -> CheckResult:
    name = "clock skew"
    if not src.sqlserver:
        src.connection()
        return CheckResult(
            name,
            True,
            f"the simulator's clock is simulated ({src.extra['clock']}, moved by `simulate "
            "advance`): skew does not apply",
        )
    src_offset, src_local = _server_offset(src.connection())
    zone = _format_offset(src_local)
    if not wh.sqlserver:
        # DuckDB runs in this process: its clock is this host's.
        skew = src_offset
        versus = "this host (the DuckDB warehouse's clock)"
    else:
        wh_offset, _ = _server_offset(wh.connection())
        skew = src_offset - wh_offset
        versus = f"the warehouse (this host is {_format_delta(-wh_offset)} from the warehouse)"
    detail = (
        f"source is {_format_delta(skew)} from {versus}; the source clock runs at UTC{zone} "
        "(the window and the ledger's refresh times are source-clock times)"
    )
    if abs(skew) > SKEW_LIMIT:
        return CheckResult(
            name,
            False,
            detail,
            "synchronise the servers' clocks (NTP); the window only uses the source clock, but "
            "comparing times across the two is misleading",
        )
    return CheckResult(name, True, detail)


def _server_offset(con: Any) -> tuple[timedelta, timedelta]:
    """(server UTC - this host's UTC at the query's midpoint, server local - server UTC)."""
    before = time.time()
    server_utc, server_local = _row(con, CLOCK_SQL)
    after = time.time()
    host_utc = datetime.fromtimestamp((before + after) / 2, UTC).replace(tzinfo=None)
    return server_utc - host_utc, server_local - server_utc


def _format_delta(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:+.1f} s"


def _format_offset(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- helpers -------------------------------------------------------------------------------------


def _row(con: Any, sql: str, params: list[Any] | None = None) -> tuple:
    cur = con.cursor()
    try:
        if params:
            cur.execute(sql, params)
        else:
            cur.execute(sql)
        row = cur.fetchone()
        while cur.nextset():
            pass
    finally:
        with suppress(Exception):
            cur.close()
    return tuple(row) if row is not None else ()


def _scalar(con: Any, sql: str, params: list[Any] | None = None) -> Any:
    row = _row(con, sql, params)
    return row[0] if row else None
