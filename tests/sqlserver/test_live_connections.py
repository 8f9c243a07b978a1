"""exigo-sync's own SQL Server connections against a live server, when one is configured
(EXIGO_SYNC_TEST_MSSQL_SERVER, _USER, _PASSWORD, _DATABASE; optional _PORT, _DRIVER,
_TRUST_CERT, _BACKEND = pyodbc | mssql-python); skipped otherwise.

Everything here connects through `sqlserver.connect` (dbt-sqlserver's credentials and
connect helpers), the warehouse engine and the source client; nothing opens pyodbc directly.
What these tests write: the ledger tables in a schema of their own in the test database
(`exigo_sync_test_<hex>`, every ledger statement pointed at it as in tests/warehouse/engines.py;
dropped afterwards), and a throw-away database holding a stand-in `queue.Refresh` with the six
queue tables (tests/sqlserver/scratch.py; made with the login that may create databases).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

import pytest

from exigo_sync import check
from exigo_sync import sqlserver as mssql
from exigo_sync.catalog import QUEUE_TABLES, REPLICATED_TABLES
from exigo_sync.profiles import Target
from exigo_sync.source import SourceError
from exigo_sync.source.sqlserver_client import SqlServerSourceClient, to_sql_datetime
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.connection import WarehouseError
from exigo_sync.warehouse.ledger import Ledger, utcnow
from exigo_sync.warehouse.sqlserver_engine import open_sqlserver
from tests.sqlserver import contenders, scratch
from tests.sqlserver.targets import ENV, admin_login, live_skip_reason, live_target
from tests.warehouse.engines import fresh_sqlserver

pytestmark = pytest.mark.sqlserver

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def target() -> Target:
    """The test server as a dbt-sqlserver target (the keys an operator's profile would have)."""
    if reason := live_skip_reason():
        pytest.skip(reason)
    return live_target()


@pytest.fixture(scope="module")
def rcsi(target: Target) -> bool:
    con = open_sqlserver(target)
    try:
        row = con.execute(
            "SELECT is_read_committed_snapshot_on FROM sys.databases WHERE name = DB_NAME()"
        ).fetchone()
    finally:
        con.close()
    return bool(row[0])


def test_connect_through_dbt_sqlserver_settings(target: Target) -> None:
    """Proves a real login through exigo-sync's connect (dbt-sqlserver's connection string,
    encrypt default, trust_cert), autocommit on and XACT_ABORT ON in the session."""
    con = mssql.connect(target)
    try:
        cur = con.cursor()
        cur.execute("SELECT 1, @@OPTIONS & 16384")  # 16384 = XACT_ABORT
        one, xact_abort = cur.fetchone()
        assert (one, xact_abort) == (1, 16384)
        assert con.autocommit
    finally:
        con.close()


def test_datetime_floor_is_exact_on_the_server(target: Target) -> None:
    """Proves to_sql_datetime's values survive SQL Server's conversion to datetime unchanged
    (the server rounds to 1/300 s; the floored values are already on that grid)."""
    con = open_sqlserver(target)
    try:
        for micro in range(0, 20_000, 1_000):
            bound = to_sql_datetime(datetime(2026, 1, 4, 23, 59, 59, micro + 999))
            (back,) = con.execute("SELECT CONVERT(datetime, ?)", [bound]).fetchone()
            assert back == bound, (micro, back, bound)
    finally:
        con.close()


@pytest.fixture
def ledger(target: Target, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """The test server with a ledger schema of this test's own (created here, dropped after)."""
    with fresh_sqlserver(monkeypatch) as live:
        con = open_sqlserver(live)
        try:
            Ledger(con).ensure_schema()
        finally:
            con.close()
        yield live


@pytest.fixture
def lock_name(ledger: Target) -> str:
    return f"exigo-sync-live-test-{uuid.uuid4().hex[:12]}"


def test_ledger_ddl_and_dml_through_the_engine(ledger: Target) -> None:
    """Proves the ledger's T-SQL DDL is idempotent on the server, and one batch's life (insert,
    refreshed, merged in one transaction, watermark) runs through the engine with bound
    parameters; a failing statement inside transaction() leaves nothing behind."""
    batch_id = -int(uuid.uuid4().int % 1_000_000_000)  # never collides with a real batch
    con = open_sqlserver(ledger)
    try:
        for _ in range(2):
            Ledger(con).ensure_schema()
        start = datetime(2026, 1, 4, 10, 0, 0, 123456)
        con.execute(q.INSERT_BATCH, [batch_id, "run", "live", "initial", start, utcnow(), 0])
        refreshed = datetime(2026, 1, 5, 9, 59, 30, 123000)
        counts = [3] * len(q.ROW_COLUMNS)
        assert (
            con.execute(q.MARK_REFRESHED, [refreshed, refreshed, 0, *counts, batch_id]).rowcount
            == 1
        )
        orders = ("orders", 1, 2, 3, 4, 5, 0, 10, 9, 1)  # q.STATS_COLUMNS, in order
        with con.transaction():
            con.execute(q.DELETE_STATS, [batch_id])
            con.execute(q.INSERT_STATS, [batch_id, *orders])
            con.execute(q.MARK_MERGED, ["inv", utcnow(), batch_id])
        row = con.execute(q.GET_BATCH, [batch_id]).fetchone()
        assert row[q.BATCH_COLUMNS.index("status")] == "merged"
        assert row[q.BATCH_COLUMNS.index("requested_start")] == start

        with pytest.raises(WarehouseError), con.transaction():
            con.execute(q.INSERT_STATS, [batch_id, "customers", 1, 1, 1, 1, 1, 0, None, None, None])
            con.execute(q.INSERT_STATS, [batch_id, *orders])  # duplicate key
        # Read back from a session of its own: what the failed transaction left, others see.
        con.close()
        con = open_sqlserver(ledger)
        assert con.execute(q.GET_STATS, [batch_id]).fetchall() == [orders]
    finally:
        with suppress(Exception):
            con.execute(q.DELETE_STATS, [batch_id])
            con.execute(f"DELETE FROM {q.BATCHES} WHERE batch_id = ?", [batch_id])
        con.close()


def test_r2_lock_race_on_insert_and_on_takeover(ledger: Target, lock_name: str, rcsi: bool) -> None:
    """R2 on a real server, under the database's isolation setting (READ COMMITTED, or RCSI as
    Azure SQL has by default; printed): 6 contender processes (tests/sqlserver/contenders.py, as
    separate runs would be) racing for a free lock (INSERT on the primary key) and for a dead one
    (TAKE_OVER_LOCK, compare-and-swap on the previous token), 10 rounds each: exactly one wins
    every round. Cannot prove the absence of a race in general, only in these rounds."""
    print(f"read_committed_snapshot_on={rcsi}")
    rounds, n = 10, 6
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n + 1), ctx.Queue()
    args = (ledger.config, q.SCHEMA, lock_name, rounds, HOUR.total_seconds(), barrier, results)
    procs = [ctx.Process(target=contenders.contend, args=args, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    con = open_sqlserver(ledger)
    try:
        for round_ in range(rounds):
            name = f"{lock_name}-{round_}"
            for phase in ("insert", "takeover"):
                barrier.wait(contenders.ROUND_TIMEOUT)  # go
                barrier.wait(contenders.ROUND_TIMEOUT)  # every attempt made
                outcomes = [results.get(timeout=10) for _ in range(n)]
                assert all(o[:2] == (round_, phase) for o in outcomes), outcomes
                wins = [o[2] for o in outcomes]
                assert all(isinstance(w, bool) for w in wins), wins  # no contender failed
                assert sum(wins) == 1, (round_, phase, wins)
                if phase == "insert":  # the holder "dies": its heartbeat older than stale_after
                    con.execute(
                        f"UPDATE {q.LOCK} SET heartbeat_at = ?, host = ? WHERE lock_name = ?",
                        [utcnow() - 2 * HOUR, "a-lost-host", name],
                    )
            con.execute(f"DELETE FROM {q.LOCK} WHERE lock_name = ?", [name])
    finally:
        barrier.abort()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
        con.close()


def test_r2_takeover_cas_blocks_then_loses_under_the_database_isolation(
    ledger: Target, lock_name: str, rcsi: bool
) -> None:
    """The interleaving the race above may not hit, forced: A's takeover UPDATE is uncommitted
    when B's UPDATE with the same old token starts; B must wait for A (update locks are taken
    on the current row even under RCSI) and then match no row. Same for two INSERTs of one
    lock name: the second waits and then fails on the primary key."""
    a, b = open_sqlserver(ledger), open_sqlserver(ledger)
    now = utcnow()
    try:
        a.execute(q.INSERT_LOCK, [lock_name, "old", None, "h", "hid", 1, "m", now, now])
        outcome: dict[str, Any] = {}

        def b_takes_over() -> None:
            started = time.monotonic()
            res = b.execute(
                q.TAKE_OVER_LOCK, ["tok-b", "b", "h", "hid", 2, "m", now, now, lock_name, "old"]
            )
            outcome.update(rowcount=res.rowcount, waited=time.monotonic() - started)

        with a.transaction():
            res = a.execute(
                q.TAKE_OVER_LOCK, ["tok-a", "a", "h", "hid", 1, "m", now, now, lock_name, "old"]
            )
            assert res.rowcount == 1
            thread = threading.Thread(target=b_takes_over)
            thread.start()
            time.sleep(1.0)
            assert thread.is_alive(), "B did not wait for A's uncommitted takeover"
        thread.join(30)
        assert outcome["rowcount"] == 0 and outcome["waited"] >= 0.9
        (token,) = a.execute(
            f"SELECT token FROM {q.LOCK} WHERE lock_name = ?", [lock_name]
        ).fetchone()
        assert token == "tok-a"

        second = f"{lock_name}-insert"
        failure: dict[str, Any] = {}

        def b_inserts() -> None:
            try:
                b.execute(q.INSERT_LOCK, [second, "tok-b", None, "h", "hid", 2, "m", now, now])
            except WarehouseError as exc:
                failure["error"] = str(exc)

        try:
            with a.transaction():
                a.execute(q.INSERT_LOCK, [second, "tok-a", None, "h", "hid", 1, "m", now, now])
                thread = threading.Thread(target=b_inserts)
                thread.start()
                time.sleep(1.0)
                assert thread.is_alive(), "B did not wait for A's uncommitted insert"
            thread.join(30)
            if ledger.config.get("backend") == "mssql-python":
                # mssql-python's exceptions carry no native error number, only the SQLSTATE.
                assert "SQLSTATE 23000" in failure["error"], failure
            else:
                assert "native error 2627" in failure["error"], failure
        finally:
            a.execute(f"DELETE FROM {q.LOCK} WHERE lock_name = ?", [second])
    finally:
        a.close()
        b.close()


# --- the source client against a stand-in queue.Refresh ---------------------------------------


def _stand_in_table(table: str) -> str:
    """A queue table with what the client's fingerprint reads: the keys and the version time."""
    t = REPLICATED_TABLES[table]
    columns = [f"[{k}] int NOT NULL" for k in t.key]
    if t.version_time_column:
        columns.append(f"[{t.version_time_column}] datetime NOT NULL")
    return f"CREATE TABLE queue.[{table}] ({', '.join(columns)})"


STAND_IN = [
    "EXEC('CREATE SCHEMA queue')",
    *(_stand_in_table(t) for t in QUEUE_TABLES),
    "CREATE TABLE queue.RefreshCalls (StartDate datetime NULL, NocountOn int)",
    """CREATE PROCEDURE queue.Refresh @StartDate datetime = NULL AS
BEGIN
    INSERT INTO queue.RefreshCalls VALUES (@StartDate, @@OPTIONS & 512);
    DELETE FROM queue.Customers;
    INSERT INTO queue.Customers VALUES (1, '2026-01-04T10:00:00.003'), (2, '2026-01-04T11:00:00');
    SELECT 'a result set the client must skip';
    IF @StartDate = '19000101' RAISERROR('stand-in failure after results', 16, 1);
END""",
]


@pytest.fixture
def stand_in(target: Target) -> Iterator[Target]:
    """A throw-away database holding the stand-in queue.Refresh (made and reached with the login
    that may create databases), dropped afterwards."""
    if admin_login() is None:
        pytest.skip(scratch.ADMIN_SKIP_REASON)
    with scratch.scratch_databases(plain=("exigo_sync_standin",)) as names:
        database = names["exigo_sync_standin"]
        con = scratch.admin_connect(database)
        try:
            for stmt in STAND_IN:
                con.cursor().execute(stmt)
        finally:
            con.close()
        yield scratch.admin_target(database)


def test_source_client_refresh_against_a_stand_in_procedure(stand_in: Target) -> None:
    """Proves on a real server: the start reaches the procedure as the exact floored datetime,
    NOCOUNT is on inside it, the result set it sends is drained, the clock and each queue
    table's fingerprint come back (read in the refresh's transaction), a query() streams rows;
    and an error raised after results fails the refresh."""
    client = SqlServerSourceClient(stand_in, query_timeout=60)
    start = datetime(2026, 1, 4, 23, 50, 0, 125999)
    result = client.refresh(start)
    assert result.requested_start == datetime(2026, 1, 4, 23, 50, 0, 123000)
    assert result.refresh_started_at <= result.refresh_finished_at
    assert result.row_counts == {t: (2 if t == "Customers" else 0) for t in QUEUE_TABLES}
    customers = result.fingerprint["Customers"]
    assert customers.key_sums == (3,)
    assert (customers.earliest, customers.latest) == (
        datetime(2026, 1, 4, 10, 0, 0, 3000), datetime(2026, 1, 4, 11, 0, 0)
    )  # fmt: skip
    assert result.fingerprint["Orders"].rows == 0 and result.fingerprint["Orders"].latest is None
    assert result.utc_offset is not None
    with client.query("SELECT StartDate, NocountOn FROM queue.RefreshCalls") as cur:
        assert [tuple(r) for r in cur.fetchall()] == [(result.requested_start, 512)]
    with pytest.raises(SourceError, match="stand-in failure after results"):
        client.refresh(datetime(1900, 1, 1))
    with client.query("SELECT COUNT(*) FROM queue.RefreshCalls") as cur:
        assert cur.fetchall()[0][0] == 1  # the failed call rolled back with its transaction


def test_checks_run_against_the_server(target: Target) -> None:
    """Proves run_checks against the live server: every check returns, the logins pass."""
    database = target.config["database"]
    results = {r.name: r for r in check.run_checks(target, target, database)}
    assert results["source login"].ok and results["warehouse login"].ok, results
    assert results["clock skew"].ok, results["clock skew"]
    assert os.environ.get(ENV + "PASSWORD", "") not in repr(results)
