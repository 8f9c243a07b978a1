"""Fast checks of the pure pieces: the window (W1-W3), the profile reader and secret scrubbing
(S1), the dbt arguments and the ledger SQL (values always bound, never formatted in)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from exigo_sync.dbt_runner import DbtBuildFailed, build_args, judge
from exigo_sync.profiles import ProfileError, load_target
from exigo_sync.settings import REPO_ROOT, Settings
from exigo_sync.topology import resolve_topology
from exigo_sync.warehouse import ledger_sql
from exigo_sync.window import FULL_LOAD_START, WindowRefused, compute_window, parse_since

NOW = datetime(2026, 1, 5, 12, 0)
WM = datetime(2026, 1, 5, 10, 0)


def _window(**kw: object):  # type: ignore[no-untyped-def]
    args = dict(
        since=None, watermark=None, source_now=NOW, overlap=timedelta(minutes=10),
        initial_start=None, initial_lookback=None,
    )  # fmt: skip
    args.update(kw)
    return compute_window(**args)  # type: ignore[arg-type]


def test_w1_full_load_first_then_watermark_minus_overlap() -> None:
    # No merged batch: everything (a start before any data), unless the operator configured a
    # start or the vendor's lookback, which leaves the warehouse partial.
    assert (_window().start, _window().kind) == (FULL_LOAD_START, "full")
    w = _window(initial_start=datetime(2025, 1, 1))
    assert (w.start, w.kind) == (datetime(2025, 1, 1), "initial")
    w = _window(initial_lookback=timedelta(hours=24))
    assert (w.start, w.kind) == (NOW - timedelta(hours=24), "initial")
    w = _window(watermark=WM)
    assert (w.start, w.kind) == (WM - timedelta(minutes=10), "watermark")
    # A replay from before any data is a full load too: it makes a partial warehouse complete.
    w = _window(since=FULL_LOAD_START, watermark=WM)
    assert (w.start, w.kind) == (FULL_LOAD_START, "full")


def test_w2_since_replays_before_the_watermark() -> None:
    w = _window(since=datetime(2026, 1, 1), watermark=WM)
    assert (w.start, w.kind) == (datetime(2026, 1, 1), "since")


def test_w3_no_since_means_resume() -> None:
    assert parse_since("") is None
    assert parse_since(None) is None


@pytest.mark.parametrize("bad", ["not-a-date", "2026-13-01", "2026-01-05T10:00+02:00"])
def test_w3_parse_since_refuses_what_it_cannot_read(bad: str) -> None:
    with pytest.raises(WindowRefused, match="refused"):
        parse_since(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1/1/2017", datetime(2017, 1, 1)),  # the vendor note's own example
        ("2017-01-01", datetime(2017, 1, 1)),
        ("2026-01-05T08:30:00", datetime(2026, 1, 5, 8, 30)),
    ],
)
def test_w2_since_accepts_the_vendor_and_iso_formats(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected


def test_w3_future_and_after_watermark_refused_unless_gap_allowed() -> None:
    with pytest.raises(WindowRefused, match="future"):
        parse_since("2999-01-01")
    assert parse_since("2999-01-01", allow_gap=True) == datetime(2999, 1, 1)
    with pytest.raises(WindowRefused, match="after the watermark"):
        _window(since=WM + timedelta(minutes=1), watermark=WM)
    with pytest.raises(WindowRefused, match="after the source clock"):
        _window(since=NOW + timedelta(hours=1), watermark=WM)
    assert _window(since=WM + timedelta(minutes=1), watermark=WM, allow_gap=True).kind == "gap"


def _profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_PATH", str(tmp_path / "src.duckdb"))
    monkeypatch.setenv("EXIGO_SYNC_WAREHOUSE_PATH", str(tmp_path / "wh.duckdb"))
    return tmp_path


def test_profile_gives_source_and_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = load_target(_profile(tmp_path, monkeypatch), "exigo_sync", "duckdb")
    assert t.warehouse_path() == tmp_path / "wh.duckdb"
    assert t.source_path() == tmp_path / "src.duckdb"
    topology = resolve_topology(tmp_path, "exigo_sync", target="duckdb")
    assert topology.name == "colocated" and topology.source_path() == tmp_path / "src.duckdb"
    assert topology.lock_name().startswith("exigo-sync-src-")
    with pytest.raises(ProfileError, match="not found"):
        load_target(tmp_path, "exigo_sync", "nope")


def test_s1_profile_errors_and_repr_hold_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Sup3r-Secret-Value-991"
    monkeypatch.setenv("EXIGO_SYNC_MSSQL_USER", "u")
    monkeypatch.setenv("EXIGO_SYNC_MSSQL_PASSWORD", secret)
    t = load_target(_profile(tmp_path, monkeypatch), "exigo_sync", "sqlserver")
    assert secret not in repr(t)
    assert t.scrub(f"login failed for u/{secret}") == "login failed for u/***"
    # A value that fails to render must not be quoted back in the error (dbt's message would).
    (tmp_path / "profiles.yml").write_text(
        "p:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n"
        "      threads: \"{{ env_var('EXIGO_SYNC_MSSQL_PASSWORD') | as_number }}\"\n"
    )
    with pytest.raises(ProfileError) as err:
        load_target(tmp_path, "p")
    assert secret not in str(err.value) and "EXIGO_SYNC_MSSQL_PASSWORD" in str(err.value)


def test_dbt_args_stay_the_same_between_batches() -> None:
    """dbt reads the batch id from the ledger: the args (and so dbt's partial parse) do not
    change from batch to batch; a batch leaves the whole-table column tests to full checks."""
    topology_vars = {"exigo_deletion_sweep_entities": ["payments"], "exigo_landed": True}
    args = build_args(batch_vars=topology_vars, select=None, exclude="tag:slow")
    assert args == build_args(batch_vars=topology_vars, select=None, exclude="tag:slow")
    assert args[:3] == ["build", "--select", "tag:exigo_staging+"]
    assert "exigo_batch_id" not in args[4] and '"exigo_landed": true' in args[4]
    assert args[5:] == ["--exclude", "tag:slow", "test_name:not_null", "test_name:unique",
                        "test_name:accepted_values", "test_name:relationships"]  # fmt: skip
    full = build_args(batch_vars=topology_vars, select=None, full_checks=True)
    assert '"exigo_full_checks": true' in full[4] and "--exclude" not in full


def test_s1_ledger_sql_binds_values() -> None:
    statements = [v for k, v in vars(ledger_sql).items() if k.isupper() and isinstance(v, str)]
    dml = [s for s in statements if s.lstrip().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert dml and all("?" in s for s in dml)
    assert all("'" not in s.replace("'refreshing'", "").replace("'refreshed'", "")
               .replace("'merged'", "").replace("'failed'", "") for s in dml)  # fmt: skip
    assert len(ledger_sql.ddl("duckdb")) == len(ledger_sql.ddl("sqlserver")) == 4


def _results(*nodes: tuple[str, str]) -> dict:
    """run_results.json as dbt writes it (the fields judge() reads)."""
    return {
        "metadata": {"invocation_id": "inv-1"},
        "elapsed_time": 1.5,
        "results": [
            {"unique_id": uid, "status": status, "execution_time": 0.1, "message": "m"}
            for uid, status in nodes
        ],
    }


def test_l2_dbt_success_judged_from_results() -> None:
    ok = judge(_results(("model.p.a", "success"), ("test.p.t", "pass")), exit_code=0)
    assert ok.statuses == {"model.p.a": "success", "test.p.t": "pass"}
    assert ok.invocation_id == "inv-1"
    # dbt said success, but a merge model was skipped: not merged (L2).
    with pytest.raises(DbtBuildFailed, match="1 model"):
        judge(_results(("model.p.a", "success"), ("model.p.b", "skipped")), exit_code=0)
    with pytest.raises(DbtBuildFailed, match=r"test\.p\.t fail"):
        judge(_results(("model.p.a", "success"), ("test.p.t", "fail")), exit_code=1)
    # Every node passed but dbt itself failed (e.g. a hook after the run): not merged either.
    with pytest.raises(DbtBuildFailed, match="exited with code 2"):
        judge(_results(("model.p.a", "success")), exit_code=2)
    with pytest.raises(DbtBuildFailed, match="no nodes"):
        judge(_results(), exit_code=0)
    with pytest.raises(DbtBuildFailed, match=r"no run_results\.json"):
        judge(None, exit_code=2)


def test_s1_a_password_variable_that_is_missing_is_named_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt leaves a secret whose env var is missing as its template text (it would go to the
    server as the password and fail as a login error): refused, naming the variable."""
    monkeypatch.delenv("EXIGO_SYNC_SOURCE_PASSWORD", raising=False)
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_USER", "reader")
    with pytest.raises(
        ProfileError, match="`password` did not render: set EXIGO_SYNC_SOURCE_PASSWORD"
    ):
        load_target(_profile(tmp_path, monkeypatch), "exigo_sync", "source")


def test_a_large_duckdb_batch_runs_dbt_on_one_thread() -> None:
    """At or above duckdb_one_thread_rows a DuckDB batch runs on one thread; below it, and on
    SQL Server whatever the size, dbt uses the profile's threads (None: no --threads)."""
    settings = Settings(duckdb_one_thread_rows=1000)
    assert settings.threads_for_batch("duckdb", 1000) == 1
    assert settings.threads_for_batch("duckdb", 999) is None
    assert settings.threads_for_batch("sqlserver", 10_000_000) is None
    assert build_args(batch_vars={}, select=None, threads=1)[-2:] == ["--threads", "1"]
    assert "--threads" not in build_args(batch_vars={}, select=None)


@pytest.mark.parametrize("bad", ["abc", "0", "-1"])
def test_a_bad_dbt_thread_count_is_refused_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile would render "abc" as 0 threads; the settings refuse it first."""
    monkeypatch.setenv("EXIGO_SYNC_DBT_THREADS", bad)
    with pytest.raises(ValueError, match="dbt_threads"):
        Settings()
