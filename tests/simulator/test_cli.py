"""`exigo-sync simulate …`: works end to end, and bad input gets one line, never a traceback."""

from __future__ import annotations

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
