"""The measured processes: `python -m bench.child flow|floor ... --out result.json`.

`flow` runs the exigo-sync flow in this process, as `exigo-sync serve` and a deployment's flow
run do, reporting to the Prefect API in PREFECT_API_URL (the bench's running server); `--runs N`
runs it N times in the same process. Each run is timed from the call to its return; the time of
each batch step (lock, window, refresh, dbt, ledger) is read from the flow's own step
bookkeeping (exigo_sync.batch.Batch.step, observed, not changed). The dbt child's peak memory is
this process's RUSAGE_CHILDREN high-water mark (dbt is its only child).

`floor` runs the hand-written SCD2 statements (bench.floor) on a warehouse.

`landing` runs the snapshot's copy step alone (exigo_sync.warehouse.landing, as the flow's `land`
step calls it) from a refreshed simulator into an empty DuckDB warehouse: landed, the rows as
Arrow record batches the source's driver builds, or (`--rows`) as row tuples, the way a driver
without Arrow fetch (pyodbc) hands them over; or (`--colocated`) the warehouse's own copy from
the attached file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import dbt_results, floor
from bench.procs import children_maxrss_mb, loadavg, self_maxrss_mb
from bench.workspace import copy_db
from exigo_sync.processes import stop_fork_server

STEPS: list[tuple[str, float]] = []


def _observe_steps() -> None:
    from exigo_sync.batch import Batch

    original = Batch.step

    @contextmanager
    def step(self: Batch, name: str) -> Iterator[None]:
        started = time.perf_counter()
        with original(self, name):
            yield
        STEPS.append((name, round(time.perf_counter() - started, 3)))

    Batch.step = step  # type: ignore[method-assign]


def run_flows(
    runs: int,
    params: dict[str, Any],
    *,
    reset: tuple[Path, Path] | None = None,
    reset_copy: Path | None = None,
    long_run_seconds: float = float("inf"),
    long_runs: int = 1,
) -> dict[str, Any]:
    """Run the flow `runs` times in this process; after the first (the process's warm-up),
    stop at `long_runs` runs once a run takes `long_run_seconds`. With `reset` = (warehouse,
    source) files, every run starts from copies of them (copied, untimed, to the paths the
    environment names); with `reset_copy`, also from the analytics copy published after that
    warehouse's last batch (its slots, as bench.run saved them), as the next batch finds it."""
    if not os.environ.get("PREFECT_API_URL"):
        raise SystemExit("bench.child flow needs PREFECT_API_URL (the bench's Prefect server)")
    from exigo_sync.flow import exigo_sync

    _observe_steps()
    flow = exigo_sync
    results_path = Path(os.environ["EXIGO_SYNC_DBT_TARGET_PATH"]) / "run_results.json"
    dbt_log = Path(os.environ["EXIGO_SYNC_DBT_LOG_PATH"]) / "dbt.log"
    out: list[dict[str, Any]] = []
    for _ in range(runs):
        counted = out[1:]  # the process's first run is its warm-up
        if len(counted) >= long_runs and counted[-1]["wall_seconds"] >= long_run_seconds:
            break
        if reset is not None:
            copy_db(reset[0], Path(os.environ["EXIGO_SYNC_WAREHOUSE_PATH"]))
            copy_db(reset[1], Path(os.environ["EXIGO_SYNC_SOURCE_PATH"]))
        if reset_copy is not None:
            restore_analytics_copy(reset_copy, Path(os.environ["EXIGO_SYNC_WAREHOUSE_PATH"]))
        STEPS.clear()
        log_at = dbt_log.stat().st_size if dbt_log.exists() else 0
        load_start = loadavg()
        started = time.perf_counter()
        state = flow(**params, return_state=True)
        wall = time.perf_counter() - started
        if not state.is_completed():
            raise SystemExit(f"flow run failed: {state.message}")
        result = state.result()
        stats = result["stats"]
        out.append(
            {
                "wall_seconds": round(wall, 3),
                "steps": dict(STEPS),
                "batch_id": result["batch_id"],
                "window_kind": result["window_kind"],
                "queue_rows": result["row_counts"],
                "changes": sum(result["row_counts"].values()),
                "versions": {
                    k: sum(int(s[k]) for s in stats) for k in ("inserted", "changed", "closed")
                },
                "dbt": dbt_results.summarize(results_path),
                "run_results": _keep(results_path, len(out)),
                "partial_parse_warm": partial_parse_warm(dbt_log, log_at),
                "load_start": load_start,
                "load_end": loadavg(),
            }
        )
    # The dbt processes are the fork server's children: ended and reaped, the server passes
    # their high-water mark on to this process's children's usage.
    stop_fork_server()
    return {
        "runs": out,
        "dbt_child_maxrss_mb": children_maxrss_mb(),
        "flow_process_maxrss_mb": self_maxrss_mb(),
    }


def run_landing(source: Path, warehouse: Path, *, rows: bool, colocated: bool) -> dict[str, Any]:
    """One landing of every table a batch lands, timed; its rows per table. `colocated`: the
    warehouse copies them itself from the attached source file (`land_in_warehouse`)."""
    import logging

    from bench.run import LANDED_ENV
    from exigo_sync import paths
    from exigo_sync.policy import SensitivePolicy
    from exigo_sync.profiles import Target, load_target
    from exigo_sync.settings import Settings
    from exigo_sync.source.duckdb_client import DuckDbSourceClient
    from exigo_sync.warehouse.landing import (
        SourceInWarehouse,
        land_batch,
        land_in_warehouse,
        tables_for_batch,
    )

    class RowsOnly(DuckDbSourceClient):
        """The simulator read as rows, as a driver without Arrow fetch (pyodbc) gives them."""

        reads_arrow = False

    client = (RowsOnly if rows else DuckDbSourceClient)(source)
    # The example profile's landed warehouse output (its DuckDB settings: memory_limit, ...),
    # writing the file given.
    settings = Settings()
    output = load_target(settings.profiles_dir, settings.profile, LANDED_ENV["EXIGO_SYNC_TARGET"])
    target = Target(output.name, "duckdb", {**output.config, "path": str(warehouse)})
    tables = tables_for_batch(settings.sweep_entities)
    load_start = loadavg()
    started = time.perf_counter()
    policy = SensitivePolicy.load(paths.dbt_project_dir())
    logger = logging.getLogger("bench")
    if colocated:
        landing = land_in_warehouse(
            SourceInWarehouse("duckdb", str(source)), target, 1, tables, logger=logger,
            policy=policy,
        )  # fmt: skip
    else:
        landing = land_batch(client, "duckdb", target, 1, tables, logger=logger, policy=policy)
    return {
        "wall_seconds": round(time.perf_counter() - started, 3),
        "rows": landing.rows,
        "load_start": load_start,
        "load_end": loadavg(),
    }


def restore_analytics_copy(saved: Path, warehouse: Path) -> None:
    """The analytics copy of `warehouse` as `save_analytics_copy` kept it: its slots (each file
    copied and fsynced, as copy_db does) and the link, at the default place."""
    from exigo_sync.warehouse import analytics_copy

    dest = analytics_copy.default_path(warehouse)
    slots = analytics_copy.slots_dir(dest)
    dest.unlink(missing_ok=True)
    shutil.rmtree(slots, ignore_errors=True)
    for slot in analytics_copy.SLOTS:
        if (saved / slot / dest.name).exists():
            copy_db(saved / slot / dest.name, slots / slot / dest.name)
        if (saved / f"{slot}.json").exists():
            shutil.copyfile(saved / f"{slot}.json", slots / f"{slot}.json")
    os.symlink((saved / "link").read_text(), dest)


def save_analytics_copy(warehouse: Path, saved: Path) -> None:
    """Keep the analytics copy next to `warehouse` (link and slots) under `saved`."""
    from exigo_sync.warehouse import analytics_copy

    dest = analytics_copy.default_path(warehouse)
    slots = analytics_copy.slots_dir(dest)
    tmp = saved.with_name(saved.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for slot in analytics_copy.SLOTS:
        copy_db(slots / slot / dest.name, tmp / slot / dest.name)
        shutil.copyfile(slots / f"{slot}.json", tmp / f"{slot}.json")
    (tmp / "link").write_text(os.readlink(dest))
    tmp.replace(saved)


def _keep(results_path: Path, run: int) -> str | None:
    """A copy of the run's run_results.json beside the child's output (BENCH_KEEP_RESULTS)."""
    keep = os.environ.get("BENCH_KEEP_RESULTS")
    if not keep or not results_path.exists():
        return None
    dest = Path(f"{keep}.run{run}.run_results.json")
    shutil.copyfile(results_path, dest)
    return str(dest)


def partial_parse_warm(dbt_log: Path, offset: int) -> bool | None:
    """Whether the dbt invocation logged after `offset` reused its partial parse."""
    try:
        with dbt_log.open("rb") as f:
            f.seek(offset if offset <= dbt_log.stat().st_size else 0)
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    if "Unable to do partial parsing" in text:
        return False
    return True if "Partial parsing enabled" in text else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("flow")
    f.add_argument("--runs", type=int, default=1)
    f.add_argument("--since", default=None)
    f.add_argument("--overlap-minutes", type=float, default=None)
    f.add_argument("--reset-from", type=Path, nargs=2, default=None)
    f.add_argument("--reset-copy", type=Path, default=None)
    f.add_argument("--long-run-seconds", type=float, default=float("inf"))
    f.add_argument("--long-runs", type=int, default=1)
    f.add_argument("--out", type=Path, required=True)
    fl = sub.add_parser("floor")
    fl.add_argument("--warehouse", required=True)
    fl.add_argument("--source", required=True)
    fl.add_argument("--out", type=Path, required=True)
    la = sub.add_parser("landing")
    la.add_argument("--source", type=Path, required=True)
    la.add_argument("--warehouse", type=Path, required=True)
    la.add_argument("--rows", action="store_true")
    la.add_argument("--colocated", action="store_true")
    la.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_KEEP_RESULTS", str(args.out.with_suffix("")))
    if args.command == "flow":
        params: dict[str, Any] = {"since": args.since} if args.since else {}
        if args.overlap_minutes is not None:
            params["overlap_minutes"] = args.overlap_minutes
        data = run_flows(
            args.runs, params, reset=args.reset_from, reset_copy=args.reset_copy,
            long_run_seconds=args.long_run_seconds, long_runs=args.long_runs,
        )  # fmt: skip
    elif args.command == "landing":
        data = run_landing(args.source, args.warehouse, rows=args.rows, colocated=args.colocated)
        data["maxrss_mb"] = self_maxrss_mb()
    else:
        data = floor.run_floor(args.warehouse, args.source)
        data["maxrss_mb"] = self_maxrss_mb()
    args.out.write_text(json.dumps(data, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
