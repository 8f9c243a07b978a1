"""Run dbt for a batch in a child process and judge it from dbt's own results.

dbt runs in a process of its own (exigo_sync.child.dbt), never in the flow's: stopping the run
(SIGTERM, Ctrl-C, a flow timeout, the parent's death) ends that process, which ends its queries
(R4). The process is forked from a server that imported dbt when the run started (`warm_up`),
so a batch does not pay dbt's imports. Success is judged from `run_results.json` (every
node's status), never from log text.
dbt's JSON log lines are forwarded to the run's logger: its info lines (one per node) as detail
(in Prefect's run log, off the console unless verbose: exigo_sync.console), its warnings and
errors as themselves. dbt's own log file (`dbt.log` in the log path) keeps them too, at the
`dbt_log_level_file` setting and above.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from exigo_sync.console import DETAIL
from exigo_sync.processes import (
    FORK_SERVER_SUPPORTED,
    ForkedChild,
    fork_child,
    fork_server,
    spawn_child,
    stop_child,
)

# Staging and everything downstream of it: history, current, rejected rows, marts (+ tests).
DEFAULT_SELECT = "tag:exigo_staging+"
# A batch runs the contract tests (H3, C1) on the keys it wrote; these generic column tests scan
# whole tables, so they run in full checks only (the nightly reconciliation run, `dbt test`).
FULL_CHECK_ONLY_TESTS = ("not_null", "unique", "accepted_values", "relationships")
# The project's own whole-table checks (sums and grains that cannot be scoped to a batch's keys)
# carry this tag: a batch does not even schedule them (each dbt node costs its Python).
FULL_CHECK_ONLY_TAG = "exigo_full_check_only"
_FAILED = {"error", "fail", "runtime error"}
# dbt's traceback of the KeyboardInterrupt a stop raises in it: the stop is logged already.
_STOPPED_NOISE = frozenset({"MainStackTrace"})


class DbtBuildFailed(RuntimeError):
    def __init__(self, message: str, invocation_id: str | None) -> None:
        super().__init__(message)
        self.invocation_id = invocation_id


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    seconds: float
    message: str = ""

    @property
    def resource_type(self) -> str:
        return self.unique_id.split(".", 1)[0]


@dataclass(frozen=True)
class DbtOutcome:
    invocation_id: str | None
    nodes: tuple[NodeResult, ...] = field(default_factory=tuple)
    elapsed_seconds: float = 0.0

    @property
    def statuses(self) -> dict[str, str]:
        return {n.unique_id: n.status for n in self.nodes}

    def summary(self) -> str:
        """One line: "46 models and 69 tests ok in 40.2 s" (and what did not pass)."""
        kinds: dict[str, dict[str, int]] = {}
        for n in self.nodes:
            # Exposures are documentation only; the project's on-run-start hook (an "operation")
            # is dbt's housekeeping, not the batch's work.
            if n.resource_type in ("exposure", "operation"):
                continue
            kind = {"unit_test": "unit tests"}.get(n.resource_type, f"{n.resource_type}s")
            kinds.setdefault(kind, {}).setdefault(n.status, 0)
            kinds[kind][n.status] += 1
        parts = []
        for kind, statuses in kinds.items():
            ok = statuses.pop("success", 0) + statuses.pop("pass", 0)
            others = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
            parts.append(f"{ok} {kind} ok" + (f" ({others})" if others else ""))
        return f"{', '.join(parts) or 'no nodes'} in {self.elapsed_seconds:.1f} s"


@dataclass(frozen=True)
class DbtInvocation:
    """Where dbt runs: the project, the profiles, and the folders it writes."""

    project_dir: Path
    profiles_dir: Path
    target: str
    target_path: Path
    log_path: Path
    # What dbt.log keeps. Info and above by default: a batch's debug lines (every statement,
    # every connection event) cost about 7% of its dbt CPU to format and write.
    log_level_file: str = "info"

    @property
    def log_file(self) -> Path:
        """dbt's own log: every line of every invocation, at `log_level_file` and above."""
        return Path(self.log_path).resolve() / "dbt.log"

    def args(self, command: Sequence[str]) -> list[str]:
        return [
            *command,
            "--project-dir", str(Path(self.project_dir).resolve()),
            "--profiles-dir", str(Path(self.profiles_dir).resolve()),
            "--target", self.target,
            # Absolute: dbt runs in the profile's folder (run_dbt).
            "--target-path", str(Path(self.target_path).resolve()),
            "--log-path", str(Path(self.log_path).resolve()),
            "--log-level-file", self.log_level_file,
        ]  # fmt: skip


@dataclass(frozen=True)
class BatchBuild:
    """The `dbt build` of one batch: where dbt runs and what it builds."""

    invocation: DbtInvocation
    batch_vars: Mapping[str, Any]
    select: str | None = None
    exclude: str | None = None
    full_checks: bool = False
    threads: int | None = None  # None: the profile's
    env: Mapping[str, str] = field(default_factory=dict)  # added to dbt's environment
    # dbt's --indirect-selection (None: dbt's own, eager): how far a selector reaches the data
    # tests of the nodes it names, in --select and --exclude alike.
    indirect_selection: str | None = None
    # Entities whose merge models the build leaves out because they cannot change anything
    # (exigo_sync.lookup_contents); the batch is merged without them (L2).
    unchanged_entities: tuple[str, ...] = ()

    def dbt_vars(self) -> dict[str, Any]:
        return dbt_vars(self.batch_vars, full_checks=self.full_checks)

    @property
    def routine(self) -> bool:
        """The default selection, less data tests at most: a build of every model (a batch
        that may leave the views or the lookups out decides so on this build, before either)."""
        excluded = (self.exclude or "").split()
        return self.select in (None, DEFAULT_SELECT) and all(
            selector == "resource_type:test" or selector.startswith("test_name:")
            for selector in excluded
        )

    def leaving_out(self, selector: str, unchanged_entities: Sequence[str] = ()) -> BatchBuild:
        """This build without the nodes `selector` names, which cannot change anything. Indirect
        selection `empty`: the exclusion drops only what the selector names, not every data test
        with a parent among them (dbt's default drops those too: the views' tests must still
        run). The selection loses nothing: `<tag>+` reaches every test below staging as a child,
        and every other exclusion of a routine build names data tests itself."""
        return replace(
            self,
            exclude=f"{self.exclude or ''} {selector}".strip(),
            indirect_selection="empty",
            unchanged_entities=(*self.unchanged_entities, *unchanged_entities),
        )

    def args(self) -> list[str]:
        return build_args(
            batch_vars=self.batch_vars, select=self.select, exclude=self.exclude,
            full_checks=self.full_checks, threads=self.threads,
            indirect_selection=self.indirect_selection,
        )  # fmt: skip


def batch_env(batch_id: int, refresh_started_at: datetime) -> dict[str, str]:
    """The batch dbt merges, handed to dbt's process by the flow that started it. Every node
    needs it (its id, the time its refresh began); asking the ledger from each node was about
    160 queries a batch. The run's on-run-start hook checks once that it is the ledger's batch
    in flight (macro exigo_check_batch_in_flight). dbt reads it only when it executes, never
    when it parses, so partial parsing stays warm from batch to batch."""
    return {
        "EXIGO_SYNC_BATCH_ID": str(batch_id),
        "EXIGO_SYNC_BATCH_REFRESHED_AT": refresh_started_at.isoformat(),
    }


def dbt_vars(batch_vars: Mapping[str, Any], *, full_checks: bool) -> dict[str, Any]:
    """The vars dbt gets: the batch's, and whether every data test runs."""
    return {**batch_vars, "exigo_full_checks": full_checks}


def build_args(
    *,
    batch_vars: Mapping[str, Any],
    select: str | None,
    exclude: str | None = None,
    full_checks: bool = False,
    threads: int | None = None,
    indirect_selection: str | None = None,
) -> list[str]:
    """`dbt build` of a batch. The vars stay the same from batch to batch (the batch id comes
    in dbt's environment, `batch_env`), so dbt's partial parsing stays warm. threads: None = the
    profile's."""
    excluded = (exclude or "").split()
    if not full_checks:
        excluded += [f"test_name:{name}" for name in FULL_CHECK_ONLY_TESTS] + [
            f"tag:{FULL_CHECK_ONLY_TAG}"
        ]
    dbt_vars_json = json.dumps(dbt_vars(batch_vars, full_checks=full_checks))
    args = ["build", "--select", select or DEFAULT_SELECT, "--vars", dbt_vars_json]
    # No manifest.json (twice) nor semantic_manifest.json per batch: ~1 s of JSON nobody reads.
    # The child still writes run_results.json, which judges the batch (exigo_sync.child.dbt).
    args += ["--no-write-json"]
    args += ["--exclude", *excluded] if excluded else []
    args += ["--indirect-selection", indirect_selection] if indirect_selection else []
    return args + (["--threads", str(threads)] if threads else [])


def preloaded_modules(adapter_type: str | None) -> list[str]:
    """What the fork server imports: dbt, and the warehouse's adapter when it is known (only
    that one: the SQL Server adapter imports pyodbc, which needs the ODBC libraries)."""
    adapter = [f"dbt.adapters.{adapter_type}"] if adapter_type else []
    return ["dbt.cli.main", "exigo_sync.child.dbt", *adapter]


def warm_up(
    adapter_type: str | None = None, *, share: bool = False, target_path: Path | None = None
) -> None:
    """Start importing dbt (and the `adapter_type` adapter) in the run's fork server now, while
    the run does other work; the batch's dbt process is forked from it. `target_path`: dbt's,
    where the server finds the last parse and compiles the project's macro templates ahead
    (exigo_sync.child.dbt.prepare_fork_server). `share`: the processes this one starts
    (serve's flow runs) fork theirs from it too."""
    if FORK_SERVER_SUPPORTED:
        from exigo_sync.child.dbt import WARM_MANIFEST_ENV

        manifest = {} if target_path is None else {
            WARM_MANIFEST_ENV: str(Path(target_path).resolve() / "partial_parse.msgpack")
        }  # fmt: skip
        fork_server(preloaded_modules(adapter_type), share=share, env=manifest)


def run_dbt(
    invocation: DbtInvocation,
    command: Sequence[str],
    *,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    env: Mapping[str, str] | None = None,
) -> int:
    """Run one dbt command in a child process, forwarding its log; returns dbt's exit code.

    Whatever interrupts the wait (a signal turned into an exception, a timeout) stops the
    child before the exception goes on: no dbt query outlives the run's decision to stop. The
    child cancels its statements in flight first (exigo_sync.child.dbt); what it says while
    doing so, and how it ended, go to the run's log.
    """
    results = invocation.target_path / "run_results.json"
    results.unlink(missing_ok=True)  # never judge a batch by the previous batch's results
    args = [*invocation.args(command), "--log-format", "json", "--no-use-colors"]
    # The profile's folder: dbt-duckdb opens a relative `path` against the working directory,
    # and exigo_sync.profiles resolves it against this folder (one file).
    cwd = Path(invocation.profiles_dir).resolve()
    proc: ForkedChild | subprocess.Popen[bytes]
    if FORK_SERVER_SUPPORTED:
        proc = fork_child(
            "exigo-sync-dbt", "exigo_sync.child.dbt", args, preload=preloaded_modules(None),
            env=env, cwd=cwd,
        )  # fmt: skip
    else:
        proc = spawn_child(
            "exigo_sync.child.dbt", args, env=env, cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    assert proc.stdout is not None
    finished = False
    try:
        for raw in proc.stdout:
            _forward(raw, logger)
        code = proc.wait()
        finished = True
        return code
    finally:
        if not finished:
            _stop(proc, logger)


def _stop(proc: ForkedChild, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Stop dbt's process (SIGTERM, SIGKILL after 5 s) and log its last lines and its end."""
    started = time.monotonic()
    code = stop_child(proc)
    try:
        if code is not None and proc.stdout is not None:
            for raw in proc.stdout.read().splitlines():  # it has ended: the pipe is at its end
                _forward(raw, logger, skip=_STOPPED_NOISE)
        how = "killed" if code == -signal.SIGKILL else f"exit code {code}"
        logger.warning("dbt's process stopped (%s) %.1f s after the stop", how,
                       time.monotonic() - started)  # fmt: skip
    except Exception:  # the run is stopping: its log must not stop it
        pass


def _forward(
    raw: bytes,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    skip: frozenset[str] = frozenset(),
) -> None:
    line = raw.decode(errors="replace").strip()
    if not line:
        return
    try:
        info = json.loads(line)["info"]
    except (ValueError, KeyError, TypeError):
        logger.info("dbt: %s", line[:2000], extra=DETAIL)
        return
    if info.get("name") in skip:
        return
    level = {"debug": logging.DEBUG, "warn": logging.WARNING, "error": logging.ERROR}.get(
        str(info.get("level")), logging.INFO
    )
    if level > logging.DEBUG and info.get("msg"):
        extra = DETAIL if level == logging.INFO else None
        logger.log(level, "dbt: %s", str(info["msg"]).strip(), extra=extra)


def run_build(
    build: BatchBuild, *, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> DbtOutcome:
    """The batch's `dbt build`, judged from its run_results.json."""
    env = {**os.environ, **build.env} if build.env else None
    code = run_dbt(build.invocation, build.args(), logger=logger, env=env)
    results = read_results(build.invocation.target_path / "run_results.json")
    required = merge_models(unchanged=build.unchanged_entities)
    return judge(results, exit_code=code, required=required, log_file=build.invocation.log_file)


def read_results(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def merge_models(unchanged: Sequence[str] = ()) -> tuple[str, ...]:
    """The models a batch must run for the watermark to move (L2): every entity's history and
    current state, less the `unchanged` entities' (lookups whose every row is as the last
    batch that merged them left them: exigo_sync.lookup_contents)."""
    from exigo_sync.catalog import ENTITIES

    return tuple(
        f"{name}_{layer}"
        for name in ENTITIES
        if name not in unchanged
        for layer in ("history", "current")
    )


def judge(
    results: Mapping[str, Any] | None,
    *,
    exit_code: int,
    required: Sequence[str] = (),
    log_file: Path | None = None,
) -> DbtOutcome:
    """Turn run_results.json into an outcome, or raise naming every failed node, and every
    `required` model (by name) that did not run and succeed: a selection that leaves one out
    merges only part of the batch, so the batch is not merged and the watermark stays (L2)."""
    log = f"dbt's log: {log_file}" if log_file else "dbt's log"
    if results is None:
        raise DbtBuildFailed(
            f"dbt build could not run (exit code {exit_code}, no run_results.json): see the "
            f"dbt errors above, and {log}",
            None,
        )
    invocation_id = (results.get("metadata") or {}).get("invocation_id")
    nodes = tuple(
        NodeResult(
            unique_id=str(r["unique_id"]),
            status=str(r.get("status") or "").lower(),
            seconds=float(r.get("execution_time") or 0.0),
            message=_squash(r.get("message")),
        )
        for r in results.get("results") or []
    )
    # L2: every merge model must have succeeded; a skipped model did not merge either.
    failed = [f"{n.unique_id} {n.status}: {n.message}" for n in nodes if n.status in _FAILED]
    not_run = [
        n.unique_id
        for n in nodes
        if n.resource_type == "model" and n.status not in ("success", *_FAILED)
    ]
    if not_run:
        failed.append(f"{len(not_run)} model(s) not run: {', '.join(not_run[:5])}")
    if failed or exit_code != 0:
        detail = "; ".join(failed) or f"dbt exited with code {exit_code}"
        raise DbtBuildFailed(f"dbt build failed: {detail} ({log})", invocation_id)
    ran = {n.unique_id.split(".")[-1] for n in nodes if n.resource_type == "model"}
    left_out = [name for name in required if name not in ran]
    if left_out:
        raise DbtBuildFailed(
            f"the dbt selection left out {len(left_out)} merge model(s) "
            f"({', '.join(left_out[:6])}{', ...' if len(left_out) > 6 else ''}): a batch is "
            "merged only when every history and current model ran (L2); this one is not, and "
            "the watermark does not move (narrow --select / EXIGO_SYNC_DBT_SELECT / "
            "EXIGO_SYNC_DBT_EXCLUDE only to add models, never to leave merge models out)",
            invocation_id,
        )
    if not nodes:
        raise DbtBuildFailed("dbt build selected no nodes: check the selector", invocation_id)
    return DbtOutcome(invocation_id, nodes, float(results.get("elapsed_time") or 0.0))


def _squash(value: Any, limit: int = 1000) -> str:
    """dbt's messages span lines ("Compilation Error in model x" + the cause): keep both."""
    return " ".join(str(value or "").split())[:limit]
