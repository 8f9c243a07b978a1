"""Throw-away databases on the live test server, for the live tests that need their own (a sync
database built from the sandbox's SQL, a warehouse database), made with the login that may create
databases (tests/sqlserver/targets.py `admin_login`).

Setup errors are raised as themselves; a database that cannot be dropped afterwards is reported
(a log record and a warning naming it, to drop by hand) and never masks the test's own outcome.
Names are unique per test (`<prefix>_<8 hex>`), so runs and other users of the server never meet.

The sandbox's sync database is 01_sync_database.sql + 02_queue_refresh.sql with the database's
name replaced. On Babelfish for PostgreSQL (not SQL Server; `is_babelfish`) 02 cannot be created
as written, and an equivalent is created instead (`sync_database_sql`); on SQL Server the scripts
run unchanged, and a failure is a failure.
"""

from __future__ import annotations

import logging
import re
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from deploy.sqlserver import generate_sql as gen
from exigo_sync import sqlserver as mssql
from exigo_sync.profiles import Target
from tests.sqlserver.batches import run_batch, run_script
from tests.sqlserver.targets import ADMIN_SKIP_REASON, admin_login, live_config

log = logging.getLogger(__name__)


def admin_target(database: str = "master") -> Target:
    """The live server, as the login that may create databases, in `database`."""
    login = admin_login()
    if login is None:
        raise RuntimeError(ADMIN_SKIP_REASON)
    user, password = login
    return Target("admin", "sqlserver", live_config(database, user=user, password=password))


def admin_connect(database: str = "master") -> Any:
    """An autocommitting connection as the admin login (exigo-sync's own connect)."""
    return mssql.connect(admin_target(database), retries=0)


def is_babelfish(con: Any) -> bool:
    """Whether the server is Babelfish for PostgreSQL (a T-SQL engine that is not SQL Server)."""
    (version,) = run_batch(con, "SELECT @@VERSION")[0]
    return "babelfish" in str(version).lower()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def sync_database_sql(name: str, babelfish: bool) -> list[str]:
    """The sandbox's 01 and 02 scripts for a sync database called `name`.

    On Babelfish only, 02 is adapted. Babelfish 4.2 has no `WITH EXECUTE AS OWNER` on procedures
    ("'EXECUTE AS SELF|OWNER|<user>|<login>' is not currently supported in Babelfish") and no
    `CREATE OR ALTER` (a syntax error). In a fresh database, created by the login that then calls
    the procedure, `CREATE PROCEDURE` without the clause is the same procedure for these tests:
    the caller owns everything it touches, so running as the owner changes nothing. What EXECUTE AS
    OWNER is for (a login holding only EXECUTE replaces the queue tables) is proven only on SQL
    Server (tests/sqlserver/test_sandbox_live.py, against the sandbox). The sandbox's SQL itself
    stays as it is: it is right for SQL Server."""
    texts = []
    for script in ("01_sync_database.sql", "02_queue_refresh.sql"):
        text = (gen.SQL_DIR / script).read_text()
        text = text.replace(f"[{gen.SYNC_DATABASE}]", f"[{name}]")
        text = text.replace(f"N'{gen.SYNC_DATABASE}'", f"N'{name}'")
        if babelfish and script.startswith("02"):
            text = re.sub(r"(?m)^WITH EXECUTE AS OWNER\n", "", text)
            text = text.replace("CREATE OR ALTER PROCEDURE", "CREATE PROCEDURE")
        texts.append(text)
    return texts


def create_sync_database(con: Any, name: str) -> None:
    babelfish = is_babelfish(con)
    try:
        for text in sync_database_sql(name, babelfish):
            run_script(con, text)
    finally:
        with suppress(Exception):
            run_batch(con, "USE [master]")


def drop_database(name: str) -> None:
    """Drop `name` if it exists, on a connection of its own (the test's may be what failed).
    SQL Server: other sessions (pooled connections) are rolled back first with SINGLE_USER;
    Babelfish has no ALTER DATABASE ... SET and drops without. Never raises: a database left
    behind is logged and warned about."""
    try:
        con = admin_connect()
    except Exception as exc:
        _left_behind(name, exc)
        return
    try:
        exists = run_batch(con, "SELECT DB_ID(?)", name)[0][0] is not None
        if not exists:
            return
        with suppress(Exception):  # not on Babelfish ('ALTER DATABASE' is not supported)
            run_batch(con, f"ALTER DATABASE [{name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE")
        try:
            run_batch(con, f"DROP DATABASE [{name}]")
        except Exception:
            # Still in use (a pooled connection, e.g. mssql-python's, where SINGLE_USER is not
            # available): end those sessions, then drop.
            _end_sessions(con, name)
            run_batch(con, f"DROP DATABASE [{name}]")
    except Exception as exc:
        _left_behind(name, exc)
    finally:
        with suppress(Exception):
            con.close()


def _end_sessions(con: Any, name: str) -> None:
    sessions = run_batch(
        con,
        "SELECT session_id FROM sys.dm_exec_sessions "
        "WHERE database_id = DB_ID(?) AND session_id <> @@SPID",
        name,
    )
    for (session,) in sessions:
        with suppress(Exception):  # gone meanwhile
            run_batch(con, f"KILL {int(session)}")


def _left_behind(name: str, exc: BaseException) -> None:
    message = f"could not drop the test database [{name}] (drop it by hand): {exc}"
    log.warning(message)
    warnings.warn(message, stacklevel=3)


@contextmanager
def scratch_databases(
    *, sync: tuple[str, ...] = (), plain: tuple[str, ...] = ()
) -> Iterator[dict[str, str]]:
    """Databases of this test, by prefix: `sync` ones built from the sandbox's 01 + 02, `plain`
    ones empty; all dropped on the way out. Yields {prefix: name}."""
    names: dict[str, str] = {}
    con = admin_connect()  # a failure here is the test's setup error, as it is
    try:
        for prefix in sync:
            names[prefix] = unique(prefix)
            create_sync_database(con, names[prefix])
        for prefix in plain:
            names[prefix] = unique(prefix)
            run_batch(con, f"CREATE DATABASE [{names[prefix]}]")
        yield names
    finally:
        with suppress(Exception):
            con.close()
        for name in names.values():
            drop_database(name)
