"""`exigo-sync simulate …`: works end to end, and bad input gets one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from exigo_sync.cli import app
from exigo_sync.simulator import SyncSimulator

runner = CliRunner()


def _run(*args: str) -> Any:
    return runner.invoke(app, ["simulate", *args])


def test_cli_create_advance_refresh_counts(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    result = _run("create", db, "--customers", "50", "--seed", "3", "--clock-start", "1/2/2026")
    assert result.exit_code == 0, result.output
    assert SyncSimulator(db).now().isoformat() == "2026-01-02T00:00:00"
    result = _run("advance", db, "--hours", "1", "--minutes", "30", "--new-orders", "20")
    assert result.exit_code == 0, result.output
    assert "new_orders" in result.output
    result = _run("refresh", db)
    assert result.exit_code == 0, result.output
    for name in (
        "Customers",
        "Orders",
        "OrderDetails",
        "Payments",
        "CustomerAccounts",
        "CustomerSites",
    ):
        assert f"queue.{name}" in result.output
    assert _run("counts", db).exit_code == 0


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "s.duckdb"
    SyncSimulator.create(path, customers=20)
    return str(path)


@pytest.mark.parametrize(
    "since", ["2017-01-01", "1/1/2017", "2017-01-01T12:30:00", "2017-01-01 12:30"]
)
def test_cli_refresh_accepts_vendor_and_iso_dates(small_db: str, since: str) -> None:
    result = _run("refresh", small_db, "--since", since)
    assert result.exit_code == 0, result.output
    assert len(SyncSimulator(small_db).queue_rows("Customers")) == 20  # everything since 2017


def test_cli_deletions_restore_and_emptied_tables(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    assert _run("create", db, "--customers", "200", "--seed", "5").exit_code == 0
    result = _run(
        "advance", db, "--hours", "3", "--customer-purges", "1", "--order-deletes", "1",
        "--account-deletes", "1", "--site-deletes", "1", "--line-removals", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for kind in ("customers_purged", "orders_deleted", "accounts_deleted", "sites_deleted"):
        assert kind in result.output
    sim = SyncSimulator(db)
    purged = sorted(sim.deleted_keys("Customers"))
    assert len(purged) == 3
    assert "deleted keys" in _run("counts", db).output

    result = _run("restore-deleted", db, "Customers", "--key", str(purged[0]))
    assert result.exit_code == 0, result.output
    assert sim.deleted_keys("Customers") == set(purged[1:])
    result = _run("restore-deleted", db, "Orders", "--count", "2")
    assert result.exit_code == 0 and "restored 2 Orders" in result.output, result.output
    removed = min(sim.removed_order_lines())
    result = _run("restore-deleted", db, "OrderDetails", "--key", f"{removed[0]}:{removed[1]}")
    assert result.exit_code == 0, result.output
    assert removed in {(r["OrderID"], r["OrderLine"]) for r in sim.current_rows("OrderDetails")}

    before = sim.current_rows("Payments")
    result = _run("empty-table", db, "Payments")
    assert result.exit_code == 0 and "reads empty" in result.output, result.output
    assert sim.row_counts()["Payments"] == 0 and "(emptied)" in _run("counts", db).output
    assert _run("restore-table", db, "Payments").exit_code == 0
    assert sim.current_rows("Payments") == before


def test_cli_bench_reports_times_memory_and_row_counts() -> None:
    result = _run("bench", "--customers", "60", "--advance-hours", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["dbo_rows"]["Customers"] == 60
    assert report["dbo_rows"]["Orders"] == 300  # 5 orders per customer by default
    for phase in ("create", "advance", "refresh"):
        assert report[phase]["wall_seconds"] >= 0 and report[phase]["peak_rss_mb"] > 0
    assert sum(report["queue_rows"].values()) > 0
    text = _run("bench", "--customers", "30", "--advance-hours", "0")
    assert text.exit_code == 0 and "peak RSS" in text.output, text.output


BAD_INPUT = [
    (["create", "{db}"], "already exists"),
    (["create", "{new}", "--customers", "-5"], "--customers"),
    (["create", "{new}", "--orders-per-customer", "-1"], "--orders-per-customer"),
    (["create", "{new}", "--bogus"], "No such option"),
    (["create", "{new}", "--clock-start", "not-a-date"], "cannot parse date"),
    (["refresh", "{db}", "--since", "2017-13-45"], "cannot parse date"),
    (["refresh", "{db}", "--since", "2017-01-01T00:00:00+02:00"], "UTC offset"),
    (["refresh", "{new}"], "no simulator database"),
    (["refresh"], "Missing argument"),
    (["advance", "{db}"], "positive --hours"),
    (["advance", "{db}", "--hours", "abc"], "--hours"),
    (["advance", "{db}", "--hours", "-2"], "--hours"),
    (["advance", "{db}", "--hours", "1", "--new-orders", "-3"], "--new-orders"),
    (["counts", "{new}"], "no simulator database"),
    (["advance", "{db}", "--hours", "1", "--order-deletes", "-1"], "--order-deletes"),
    (["empty-table", "{db}", "Bogus"], "unknown table"),
    (["restore-table", "{db}", "Payments"], "not emptied"),
    (["restore-deleted", "{db}", "Payments"], "--count or --key"),
    (["restore-deleted", "{db}", "Payments", "--count", "1", "--key", "3"], "--count or --key"),
    (["restore-deleted", "{db}", "OrderDetails", "--key", "x:1"], "not a key"),
    (["restore-deleted", "{db}", "Customers", "--key", "1"], "not deleted now"),
    (["frobnicate"], "No such command"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_cli_bad_input_is_one_line_error_without_traceback(
    small_db: str, tmp_path: Path, args: list[str], message: str
) -> None:
    new = tmp_path / "new.duckdb"
    result = _run(*[a.format(db=small_db, new=new) for a in args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not new.exists()
