"""Run the merge models for one batch with prefect-dbt's PrefectDbtRunner.

Success is judged from dbt's own results (every node's status), never from its log output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# Staging and everything downstream of it: history, current, rejected rows, marts (+ tests).
DEFAULT_SELECT = "tag:exigo_staging+"
_FAILED = {"error", "fail", "runtime error"}


class DbtBuildFailed(RuntimeError):
    def __init__(self, message: str, invocation_id: str | None) -> None:
        super().__init__(message)
        self.invocation_id = invocation_id


@dataclass(frozen=True)
class DbtOutcome:
    invocation_id: str | None
    statuses: dict[str, str] = field(default_factory=dict)  # unique_id -> status


def build_args(
    *,
    target: str,
    batch_id: int,
    refreshed_at: datetime,
    select: str | None,
    exclude: str | None = None,
) -> list[str]:
    batch_vars = {"exigo_batch_id": batch_id, "exigo_batch_refreshed_at": refreshed_at.isoformat()}
    args = [
        "build",
        "--target", target,
        "--select", select or DEFAULT_SELECT,
        "--vars", json.dumps(batch_vars),
    ]  # fmt: skip
    return args + (["--exclude", *exclude.split()] if exclude else [])


def run_build(
    *,
    project_dir: Path,
    profiles_dir: Path,
    target: str,
    batch_id: int,
    refreshed_at: datetime,
    select: str | None = None,
    exclude: str | None = None,
) -> DbtOutcome:
    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    runner = PrefectDbtRunner(
        settings=PrefectDbtSettings(project_dir=project_dir, profiles_dir=profiles_dir),
        # We judge the results ourselves (below), so failures come back as data, not text.
        raise_on_failure=False,
    )
    args = build_args(
        target=target, batch_id=batch_id, refreshed_at=refreshed_at, select=select, exclude=exclude
    )
    try:
        res = runner.invoke(args)
    except ValueError as exc:  # dbt raised before producing results (parse/compile/connection)
        raise DbtBuildFailed(f"dbt build could not run: {_squash(exc)}", None) from None
    finally:
        _release_duckdb()
    return judge(res)


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run.

    It holds the warehouse *and* the source file (attached read-only); in the same process the
    next refresh, or the simulator, could then not open the source read-write ("unique file
    handle conflict"). Runs in their own process (deployments) do not need this; the CLI demo,
    `serve` and the tests run several batches in one process.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing to release
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def judge(res: Any) -> DbtOutcome:
    """Turn a dbtRunnerResult into an outcome, or raise naming every failed node."""
    result = getattr(res, "result", None)
    invocation_id = _invocation_id(result)
    nodes = list(getattr(result, "results", None) or [])
    statuses = {r.node.unique_id: str(r.status).lower() for r in nodes}
    # L2: every merge model must have succeeded; a skipped model did not merge either.
    failed = [
        f"{r.node.unique_id} {str(r.status).lower()}: {_squash(r.message)}"
        for r in nodes
        if str(r.status).lower() in _FAILED
    ]
    not_run = [
        r.node.unique_id
        for r in nodes
        if str(r.node.resource_type) == "model"
        and str(r.status).lower() not in ("success", *_FAILED)
    ]
    if not_run:
        failed.append(f"{len(not_run)} model(s) not run: {', '.join(not_run[:5])}")
    if failed or not res.success:
        detail = "; ".join(failed) or _squash(getattr(res, "exception", None)) or "no results"
        raise DbtBuildFailed(f"dbt build failed: {detail}", invocation_id)
    if not nodes:
        raise DbtBuildFailed("dbt build selected no nodes: check the selector", invocation_id)
    return DbtOutcome(invocation_id, statuses)


def _invocation_id(result: Any) -> str | None:
    # The run result carries no metadata in-process; dbt keeps the id of the invocation that
    # just ran process-wide (only one dbt runs at a time here: the run lock).
    args = getattr(result, "args", None) or {}
    if args.get("invocation_id"):
        return str(args["invocation_id"])
    from dbt_common.invocation import get_invocation_id

    return get_invocation_id()


def _squash(value: Any, limit: int = 300) -> str:
    """dbt's messages span lines ("Compilation Error in model x" + the cause): keep both."""
    return " ".join(str(value or "").split())[:limit]


def generate_docs(*, project_dir: Path, profiles_dir: Path, target: str) -> Path:
    """`dbt docs generate`: the analysts' catalogue. Returns the folder holding index.html.

    Runs with dbt's own runner: docs are not a batch, so there is no flow run to report to.
    """
    from dbt.cli.main import dbtRunner

    target_path = project_dir / "target"
    res = dbtRunner().invoke(
        [
            "docs", "generate",
            "--project-dir", str(project_dir),
            "--profiles-dir", str(profiles_dir),
            "--target", target,
            "--target-path", str(target_path),
        ]
    )  # fmt: skip
    _release_duckdb()
    if not res.success:
        raise DbtBuildFailed(f"dbt docs generate failed: {_squash(res.exception)}", None)
    return target_path
