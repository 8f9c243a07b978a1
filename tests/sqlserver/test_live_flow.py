"""The whole flow against a real SQL Server (the sandbox: `make sqlserver-up`, then
`make test-sqlserver`, or any server); skipped unless EXIGO_SYNC_TEST_MSSQL_SERVER, _USER and
_PASSWORD are set (optional _PORT, _DRIVER, _TRUST_CERT). The tests connect as the login that may
create databases (tests/sqlserver/targets.py `admin_login`: EXIGO_SYNC_TEST_MSSQL_ADMIN_USER /
_ADMIN_PASSWORD, the sandbox's `sa` under `make test-sqlserver`; else the test login).

Every test works in throw-away databases (tests/sqlserver/scratch.py): a sync database built from
the sandbox's 01/02 scripts and filled from a small simulator by the sandbox's loader, and a
warehouse database, both dropped at the end (a setup failure is reported as itself; a database
that cannot be dropped is logged and warned about, never masking the test's outcome).
What only a live server proves, and these tests check:
- both topologies end to end: co-located (warehouse on the sync database's server, three-part
  names), landed into SQL Server (forced), landed into DuckDB; two batches; the current-state
  tables equal dbo (T1) and the ledger says merged;
- the same simulator history gives the same versions on SQL Server as on DuckDB;
- N'Zoë 李' and a 9,000-character note round-trip unchanged, and a change at character 8,500
  makes a new version (H1: nothing truncated, Unicode kept);
- a history model failing after its delete+insert leaves history unchanged (H8, dbt-sqlserver
  transactions), and a crash before current state heals on the next run (R1).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from deploy.sqlserver import load_simulator as loader
from exigo_sync.profiles import Target
from exigo_sync.simulator import SyncSimulator
from tests.sqlserver import scratch
from tests.sqlserver.batches import run_batch
from tests.sqlserver.targets import (
    COLOCATED_FLOW,
    DBT_QUERY_LABEL,
    ENV,
    admin_login,
    babelfish_gap,
    live_config,
)

pytestmark = pytest.mark.sqlserver

NEEDED = (f"{ENV}SERVER", f"{ENV}USER", f"{ENV}PASSWORD")
SQLSERVER_WAREHOUSE = Target("wh", "sqlserver", {})  # what babelfish_gap asks of a target
ENTITY_TABLES = {
    "customers": ("Customers", "customer_id", "CustomerID"),
    "orders": ("Orders", "order_id", "OrderID"),
    "payments": ("Payments", "payment_id", "PaymentID"),
}


@pytest.fixture(scope="module", autouse=True)
def _need_a_server() -> None:
    missing = [n for n in NEEDED if not os.environ.get(n)]
    if missing:
        pytest.skip(f"no SQL Server configured (set {', '.join(missing)})")


def connect(database: str) -> Any:
    return scratch.admin_connect(database)


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """(sync database, warehouse database): throw-away, dropped afterwards."""
    with scratch.scratch_databases(sync=("ExigoSyncFlow",), plain=("ExigoWarehouseFlow",)) as n:
        yield n["ExigoSyncFlow"], n["ExigoWarehouseFlow"]


def _admin_password_variable() -> str:
    """The environment variable holding the admin login's password (the profile names it)."""
    return f"{ENV}ADMIN_PASSWORD" if os.environ.get(f"{ENV}ADMIN_USER") else f"{ENV}PASSWORD"


def _sqlserver_output(database: str) -> dict[str, Any]:
    user, _ = admin_login()  # type: ignore[misc]
    password = "{{ env_var('" + _admin_password_variable() + "') }}"
    return {**live_config(database, user=user, password=password), "threads": 4}


class LiveEnv:
    def __init__(self, tmp: Path, sync: str, warehouse: str, monkeypatch: pytest.MonkeyPatch):
        self.tmp, self.sync, self.warehouse_db = tmp, sync, warehouse
        self.sim_path = tmp / "source.duckdb"
        self.duckdb_warehouse = tmp / "warehouse.duckdb"
        SyncSimulator.create(self.sim_path, seed=5, customers=200, clock_start=datetime(2026, 1, 5))
        profiles = tmp / "profiles"
        profiles.mkdir()
        profile = {
            "exigo_sync": {
                "target": "wh",
                "outputs": {
                    "source": _sqlserver_output(sync),
                    "wh": _sqlserver_output(warehouse),
                    "duck": {"type": "duckdb", "path": str(self.duckdb_warehouse), "threads": 1},
                },
            }
        }
        (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
        for key, value in {
            "EXIGO_SYNC_PROFILES_DIR": str(profiles),
            "EXIGO_SYNC_DBT_TARGET_PATH": str(tmp / "dbt-target"),
            "EXIGO_SYNC_DBT_LOG_PATH": str(tmp / "dbt-logs"),
            "EXIGO_SYNC_LOCK_TIMEOUT_SECONDS": "30",
        }.items():
            monkeypatch.setenv(key, value)
        self.load()

    def load(self) -> None:
        """The simulator's dbo into the sync database (changes only after the first time)."""
        user, password = admin_login()  # type: ignore[misc]
        env = {**os.environ, f"{ENV}USER": user, f"{ENV}PASSWORD": password}
        err = io.StringIO()
        code = loader.main([str(self.sim_path), "--database", self.sync], env=env,
                           out=io.StringIO(), err=err)  # fmt: skip
        assert code == 0, err.getvalue()

    def advance(self, hours: float) -> None:
        SyncSimulator(self.sim_path).advance(timedelta(hours=hours))
        self.load()

    def run(self, **params: Any) -> Any:
        from exigo_sync.flow import exigo_sync

        return exigo_sync(**params, return_state=True)

    def dbo(self, table: str, key: str) -> set[tuple]:
        con = connect(self.sync)
        try:
            return {
                tuple(r)
                for r in run_batch(con, f"SELECT [{key}], ModifiedDate FROM [dbo].[{table}]")
            }
        finally:
            con.close()

    def warehouse_rows(self, sql: str, on_duckdb: bool = False) -> list[tuple]:
        if on_duckdb:
            con = duckdb.connect(str(self.duckdb_warehouse), read_only=True)
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        con = connect(self.warehouse_db)
        try:
            return run_batch(con, sql)
        finally:
            con.close()


@pytest.fixture
def live(databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> LiveEnv:
    sync, warehouse = databases
    return LiveEnv(tmp_path, sync, warehouse, monkeypatch)


@pytest.mark.parametrize(
    ("target", "topology"),
    [("wh", "colocated"), ("wh", "landed"), ("duck", "landed")],
    ids=["colocated", "landed-sqlserver", "landed-duckdb"],
)
def test_live_t1_both_topologies_two_batches(
    live: LiveEnv, monkeypatch: pytest.MonkeyPatch, target: str, topology: str,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """Two batches: the full initial load, then three simulated hours later a reconciliation
    (the simulator deletes orders and payments outright, which only the key sweep sees, H7);
    afterwards every entity's current state equals dbo key for key (T1)."""
    if target == "wh":  # a SQL Server warehouse: dbt builds it
        gap = COLOCATED_FLOW if topology == "colocated" else DBT_QUERY_LABEL
        babelfish_gap(request, SQLSERVER_WAREHOUSE, gap)
    monkeypatch.setenv("EXIGO_SYNC_TARGET", target)
    monkeypatch.setenv("EXIGO_SYNC_TOPOLOGY", topology)
    for step in range(2):
        if step:
            live.advance(3)
        state = live.run(reconcile=bool(step))
        assert state.is_completed(), state.message
    on_duckdb = target == "duck"
    statuses = live.warehouse_rows("SELECT status FROM exigo_sync.batches ORDER BY batch_id",
                                   on_duckdb)  # fmt: skip
    assert [s for (s,) in statuses] == ["merged", "merged"]
    for entity, (table, key, source_key) in ENTITY_TABLES.items():
        merged = set(
            live.warehouse_rows(
                f"SELECT {key}, modified_date FROM exigo_current.{entity}_current "
                "WHERE is_deleted = " + ("false" if on_duckdb else "0"),
                on_duckdb,
            )
        )
        assert merged == live.dbo(table, source_key), f"T1: {table}"


def test_live_history_equals_duckdb_history(
    live: LiveEnv, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The same simulator sequence merged on SQL Server (co-located) and on DuckDB (the
    simulator attached): the same versions per key, in the same order, with the same deletions.
    (Times differ by the loader's clock shift, so they are compared by order, not value.)"""
    babelfish_gap(request, SQLSERVER_WAREHOUSE, COLOCATED_FLOW)
    from exigo_sync.settings import REPO_ROOT

    duck_profiles = live.tmp / "duck-profiles"
    duck_profiles.mkdir()
    (duck_profiles / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    duck_sim = live.tmp / "duck-source.duckdb"
    duck_wh = live.tmp / "duck-warehouse.duckdb"
    duck_sim.write_bytes(live.sim_path.read_bytes())
    sequences: dict[str, dict[str, dict]] = {}
    for engine in ("sqlserver", "duckdb"):
        with monkeypatch.context() as m:
            if engine == "duckdb":
                m.setenv("EXIGO_SYNC_PROFILES_DIR", str(duck_profiles))
                m.setenv("EXIGO_SYNC_TARGET", "duckdb")
                m.setenv("EXIGO_SYNC_SOURCE_PATH", str(duck_sim))
                m.setenv("EXIGO_SYNC_WAREHOUSE_PATH", str(duck_wh))
            else:
                m.setenv("EXIGO_SYNC_TARGET", "wh")
            for step in range(2):
                if step:
                    if engine == "duckdb":
                        SyncSimulator(duck_sim).advance(timedelta(hours=3))
                    else:
                        live.advance(3)
                assert live.run().is_completed()
            sequences[engine] = {}
            for entity, (_, key, _) in ENTITY_TABLES.items():
                sql = (f"SELECT {key}, is_deleted, row_hash FROM exigo_history.{entity}_history "
                       f"ORDER BY {key}, valid_from")  # fmt: skip
                rows = (
                    [
                        tuple(r)
                        for r in duckdb.connect(str(duck_wh), read_only=True)
                        .execute(sql)
                        .fetchall()
                    ]
                    if engine == "duckdb"
                    else live.warehouse_rows(sql)
                )
                per_key: dict[Any, list[bool]] = {}
                for k, deleted, _ in rows:
                    per_key.setdefault(k, []).append(bool(deleted))
                sequences[engine][entity] = per_key
    assert sequences["sqlserver"] == sequences["duckdb"]


def test_live_unicode_long_text_h8_and_r1(
    live: LiveEnv, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    babelfish_gap(request, SQLSERVER_WAREHOUSE, COLOCATED_FLOW)
    monkeypatch.setenv("EXIGO_SYNC_TARGET", "wh")
    assert live.run().is_completed()
    note = "x" * 9000
    con = connect(live.sync)
    try:
        customer = run_batch(con, "SELECT MIN(CustomerID) FROM dbo.Customers")[0][0]
        run_batch(con, "UPDATE dbo.Customers SET FirstName = N'Zoë 李', Notes = ?, "
                  "ModifiedDate = GETDATE() WHERE CustomerID = ?", note, customer)  # fmt: skip
        assert live.run().is_completed()
        name, stored_note = live.warehouse_rows(
            f"SELECT first_name, notes FROM exigo_current.customers_current "
            f"WHERE customer_id = {int(customer)}"
        )[0]
        assert name == "Zoë 李" and stored_note == note  # H1: Unicode and length kept
        changed = note[:8500] + "y" + note[8501:]
        run_batch(con, "UPDATE dbo.Customers SET Notes = ?, ModifiedDate = GETDATE() "
                  "WHERE CustomerID = ?", changed, customer)  # fmt: skip
    finally:
        con.close()
    versions_sql = (
        f"SELECT COUNT(*), COUNT(DISTINCT row_hash) FROM exigo_history.customers_history "
        f"WHERE customer_id = {int(customer)}"
    )
    before = live.warehouse_rows(versions_sql)
    history_rows = "SELECT COUNT(*) FROM exigo_history.customers_history"
    rows_before = live.warehouse_rows(history_rows)
    # H8: the history model fails after its delete+insert: its transaction rolls back.
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "after_history_write")
    assert live.run().is_failed()
    assert live.warehouse_rows(history_rows) == rows_before
    # R1: a crash between history and current state heals on the next run.
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "before_current")
    assert live.run().is_failed()
    monkeypatch.delenv("EXIGO_SYNC_FAULT")
    assert live.run().is_completed()
    after = live.warehouse_rows(versions_sql)
    assert after[0][0] == before[0][0] + 1 and after[0][1] == before[0][1] + 1  # H1: a new hash
    assert (
        live.warehouse_rows(
            f"SELECT notes FROM exigo_current.customers_current WHERE customer_id = {int(customer)}"
        )[0][0][8500]
        == "y"
    )
