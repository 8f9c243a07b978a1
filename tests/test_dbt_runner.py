"""How dbt is run (exigo_sync.dbt_runner): its arguments, the same from batch to batch, its
threads, and a build judged from run_results.json (L2)."""

from __future__ import annotations

import pytest

from exigo_sync.dbt_runner import (
    BatchBuild,
    DbtBuildFailed,
    DbtInvocation,
    build_args,
    judge,
    merge_models,
)
from exigo_sync.settings import Settings


def test_dbt_args_stay_the_same_between_batches() -> None:
    """dbt reads the batch id from the ledger: the args (and so dbt's partial parse) do not
    change from batch to batch; a batch leaves the whole-table column tests to full checks."""
    topology_vars = {"exigo_deletion_sweep_entities": ["payments"], "exigo_landed": True}
    args = build_args(batch_vars=topology_vars, select=None, exclude="tag:slow")
    assert args == build_args(batch_vars=topology_vars, select=None, exclude="tag:slow")
    assert args[:3] == ["build", "--select", "tag:exigo_staging+"]
    assert "exigo_batch_id" not in args[4] and '"exigo_landed": true' in args[4]
    # The child writes run_results.json itself; dbt writes no manifest per batch.
    assert args[5] == "--no-write-json"
    assert args[6:] == ["--exclude", "tag:slow", "test_name:not_null", "test_name:unique",
                        "test_name:accepted_values", "test_name:relationships",
                        "tag:exigo_full_check_only"]  # fmt: skip
    full = build_args(batch_vars=topology_vars, select=None, full_checks=True)
    assert '"exigo_full_checks": true' in full[4] and "--exclude" not in full


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


def test_l2_a_build_leaving_unchanged_lookups_out_needs_every_other_merge_model(tmp_path) -> None:
    """Only a routine build (the default selection, data tests excluded at most) may leave
    parts out; each part it leaves out adds its selector, with indirect selection `empty`
    (the views' data tests still run), and its entities' merge models are no longer required."""
    where = DbtInvocation(tmp_path, tmp_path, "duckdb", tmp_path / "t", tmp_path / "l")
    routine = BatchBuild(where, {}, exclude="resource_type:test test_name:unique")
    assert routine.routine and BatchBuild(where, {}).routine
    assert not BatchBuild(where, {}, select="tag:exigo_history+").routine
    assert not BatchBuild(where, {}, exclude="tag:exigo_marts").routine
    lean = routine.leaving_out("config.materialized:view").leaving_out(
        "tag:exigo_lookups", unchanged_entities=("order_statuses",)
    )
    args = lean.args()
    excluded = args[args.index("--exclude") + 1 : args.index("--indirect-selection")]
    assert excluded[:4] == [
        "resource_type:test", "test_name:unique", "config.materialized:view", "tag:exigo_lookups"
    ]  # fmt: skip
    assert args[args.index("--indirect-selection") + 1] == "empty"
    assert args.count("--indirect-selection") == 1
    required = merge_models(unchanged=lean.unchanged_entities)
    assert "order_statuses_history" not in required and "orders_current" in required
    assert set(merge_models()) - set(required) == {
        "order_statuses_history",
        "order_statuses_current",
    }
    results = _results(*((f"model.exigo_sync.{name}", "success") for name in required))
    assert judge(results, exit_code=0, required=required).invocation_id == "inv-1"
    with pytest.raises(DbtBuildFailed, match="order_statuses_history"):
        judge(results, exit_code=0, required=merge_models())


def test_a_large_duckdb_batch_runs_dbt_on_one_thread() -> None:
    """At or above duckdb_one_thread_rows a DuckDB batch runs on one thread; below it, and on
    SQL Server whatever the size, dbt uses the profile's threads (None: no --threads)."""
    settings = Settings(duckdb_one_thread_rows=1000)
    assert settings.threads_for_batch("duckdb", 1000) == 1
    assert settings.threads_for_batch("duckdb", 999) is None
    assert settings.threads_for_batch("sqlserver", 10_000_000) is None
    assert build_args(batch_vars={}, select=None, threads=1)[-2:] == ["--threads", "1"]
    assert "--threads" not in build_args(batch_vars={}, select=None)


def test_dbt_node_lines_go_to_the_run_log_as_detail_warnings_and_errors_as_themselves() -> None:
    """A run's console shows one line per step: dbt's info lines (one per node) are detail
    (Prefect's run log keeps them; `--verbose` shows them), its warnings and errors are not."""
    import json
    import logging

    from exigo_sync.dbt_runner import _forward

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test.dbt_forward")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    for level, msg in (("info", "1 of 9 OK created model"), ("warn", "deprecated"),
                       ("error", "Database Error in model x"), ("debug", "sql...")):  # fmt: skip
        _forward(json.dumps({"info": {"level": level, "msg": msg}}).encode(), logger)
    _forward(b"not json", logger)
    seen = [(r.levelname, r.getMessage(), getattr(r, "exigo_detail", False)) for r in records]
    assert seen == [
        ("INFO", "dbt: 1 of 9 OK created model", True),
        ("WARNING", "dbt: deprecated", False),
        ("ERROR", "dbt: Database Error in model x", False),
        ("INFO", "dbt: not json", True),
    ]


def test_a_failed_build_shows_the_failing_nodes_and_names_dbts_log_file(tmp_path) -> None:
    log = tmp_path / "logs" / "dbt.log"
    with pytest.raises(DbtBuildFailed) as failed:
        judge(
            _results(("model.p.a", "error")), exit_code=1, log_file=log,
        )  # fmt: skip
    assert "model.p.a error" in str(failed.value) and f"dbt's log: {log}" in str(failed.value)


def test_the_dbt_step_line_counts_models_and_tests_by_outcome() -> None:
    outcome = judge(
        _results(("model.p.a", "success"), ("model.p.b", "success"), ("test.p.t", "pass"),
                 ("test.p.u", "warn"), ("exposure.p.e", "no-op"),
                 ("operation.p.exigo_sync-on-run-start-0", "success")),
        exit_code=0,
    )  # fmt: skip
    assert outcome.summary() == "2 models ok, 1 tests ok (1 warn) in 1.5 s"


def test_dbt_log_keeps_info_lines_by_default_and_every_statement_when_set_to_debug(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXIGO_SYNC_DBT_LOG_LEVEL_FILE reaches dbt's own process: `dbt.log` of a real dbt run (a
    parse, in the dbt child as a batch runs it) has no debug line by default, and has them
    when the setting says debug; a value dbt would not take is refused naming the setting."""
    import json
    import logging
    import shutil

    from exigo_sync.dbt_runner import run_dbt
    from tests.dbt.helpers import PROFILES_EXAMPLE

    (tmp_path / "profiles").mkdir()
    shutil.copy(PROFILES_EXAMPLE, tmp_path / "profiles" / "profiles.yml")
    monkeypatch.setenv("EXIGO_SYNC_PROFILES_DIR", str(tmp_path / "profiles"))
    monkeypatch.setenv("EXIGO_SYNC_WAREHOUSE_PATH", str(tmp_path / "wh.duckdb"))
    monkeypatch.setenv("EXIGO_SYNC_DBT_TARGET_PATH", str(tmp_path / "target"))
    logs: dict[str, str] = {}
    for level in ("info", "debug"):
        monkeypatch.setenv("EXIGO_SYNC_DBT_LOG_LEVEL_FILE", level)
        monkeypatch.setenv("EXIGO_SYNC_DBT_LOG_PATH", str(tmp_path / level))
        invocation = Settings().dbt_invocation("duckdb")
        assert run_dbt(invocation, ["parse"], logger=logging.getLogger("test")) == 0
        lines = invocation.log_file.read_text().splitlines()
        logs[level] = {json.loads(line)["info"]["level"] for line in lines}
    assert logs == {"info": {"info"}, "debug": {"info", "debug"}}

    monkeypatch.setenv("EXIGO_SYNC_DBT_LOG_LEVEL_FILE", "loud")
    with pytest.raises(ValueError, match="dbt_log_level_file"):
        Settings()
