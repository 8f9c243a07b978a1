"""The benchmark: builds what it needs once (cached), then measures every figure of
BENCHMARKS.md. Each figure's result is saved as soon as it is measured, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import dbt_results, floor, procs, profile, snapshot
from bench.sizes import ORDERS_PER_CUSTOMER, SEED, Sizes, label
from bench.workspace import (
    REPO_ROOT,
    VENV_BIN,
    Workspace,
    copy_db,
    file_mb,
    remove_db,
    save_db,
)

# The batches of section 1 read the queue from the watermark itself (flow parameter
# overlap_minutes=0): with the default 10-minute overlap every batch would also carry the last
# ten minutes before the watermark again, which for the big simulators is more rows than the
# smallest batch (their base population is dense there). The no-change batches of section 4
# keep the default overlap, as operated.
BATCH_OVERLAP_MINUTES = 0.0
# The `layers` figure's builds the report compares: the batch's own, and the same build without
# any test or mart (staging, history and current state alone).
LAYERS_FULL = "the batch's build"
LAYERS_LEAN = "without tests and marts"
# The initial load's two figures: co-located (the demo's topology) and landed (the flow streams
# the queue across, as from a sync database on another server), on the same simulator.
INITIAL_LOAD_KEYS = {"colocated": "initial_load", "landed": "initial_load_landed"}
# The landed topology on the example profile: the warehouse output that does not attach the
# source, the simulator as the source output, streamed across.
LANDED_ENV = {
    "EXIGO_SYNC_TARGET": "duckdb_local",
    "EXIGO_SYNC_SOURCE_TARGET": "simulator",
    "EXIGO_SYNC_TOPOLOGY": "landed",
}
# How the snapshot reaches a DuckDB warehouse (`landing/...`): landed as Arrow record batches
# the source's driver builds, landed as row tuples (a driver without Arrow fetch, pyodbc), and
# co-located, the warehouse's own copy from the attached file (what the landed copy is measured
# against: DuckDB writing the same tables). Arguments of `python -m bench.child landing`.
LANDING_WAYS = {"arrow": [], "rows": ["--rows"], "colocated": ["--colocated"]}
# A calibrated batch is accepted within this share of the asked number of changes.
CALIBRATION_TOLERANCE = 0.15


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


@dataclass
class Bench:
    ws: Workspace
    sizes: Sizes
    only: tuple[str, ...] = ()
    rerun: bool = False
    api_url: str | None = None
    measured: list[str] = field(default_factory=list)

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def results_key_prefix(self) -> str:
        return self.sizes.name

    def key(self, *parts: str) -> str:
        return "/".join([self.sizes.name, *parts])

    def wanted(self, key: str) -> bool:
        short = key.split("/", 1)[1]
        return not self.only or any(short.startswith(o) for o in self.only)

    def cached_result(self, key: str) -> dict[str, Any] | None:
        if self.rerun and self.wanted(key):
            return None
        return self.ws.load_result(key)

    def env(self, *, cold: bool = False, slot: Any = None) -> dict[str, str]:
        slot = slot or self.ws.slot
        env = self.ws.sync_env(
            slot,
            api_url=None if cold else self.api_url,
            prefect_home=self.ws.prefect_home("cli" if cold else "server"),
        )
        # This checkout's code, also where the venv's editable install points at another
        # checkout (a git worktree measured with the main checkout's venv).
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])
        return env

    def python(self) -> str:
        return str(VENV_BIN / "python")

    def log_path(self, name: str) -> Path:
        return self.ws.logs / f"{name.replace('/', '__')}.log"

    def settings(self) -> Any:
        from exigo_sync.settings import Settings

        slot = self.ws.slot
        return Settings(
            profiles_dir=self.ws.profiles,
            target="duckdb",
            dbt_target_path=slot.dbt_target,
            dbt_log_path=slot.dbt_logs,
        )

    def flow_dbt_args(self) -> list[str]:
        """The exact `dbt build` arguments the flow's merge task passes (exigo_sync.flow
        merge(): same vars, selection and exclusions), for the bare dbt build."""
        settings = self.settings()
        build = settings.batch_build(
            settings.topology_for("duckdb"), swept=settings.sweep_entities,
            confirm_deletions=[], reconcile=False, select=None, queue_rows=0,
        )  # fmt: skip
        return build.invocation.args(build.args())

    def dbt_command(self, args: list[str]) -> list[str]:
        return [str(VENV_BIN / "dbt"), *args]

    def dbt(
        self, args: list[str], name: str, batch_env: dict[str, str] | None = None
    ) -> procs.Measured:
        """`dbt args`; `batch_env`: a batch `ledger_batch` prepared, handed as the flow hands it."""
        return procs.run(
            self.dbt_command(args), env={**self.env(), **(batch_env or {})},
            log=self.log_path(name), cwd=REPO_ROOT,
        ).check()  # fmt: skip

    def flow_child(
        self,
        name: str,
        *,
        runs: int = 1,
        overlap: float | None = None,
        reset: tuple[Path, Path] | None = None,
        reset_copy: Path | None = None,
    ) -> tuple[procs.Measured, dict[str, Any]]:
        out = self.ws.logs / f"{name.replace('/', '__')}.json"
        out.unlink(missing_ok=True)
        cmd = [self.python(), "-m", "bench.child", "flow", "--runs", str(runs), "--out", str(out)]
        cmd += [
            "--long-run-seconds", str(self.sizes.long_run_seconds),
            "--long-runs", str(self.sizes.long_runs),
        ]  # fmt: skip
        if overlap is not None:
            cmd += ["--overlap-minutes", str(overlap)]
        if reset is not None:
            cmd += ["--reset-from", str(reset[0]), str(reset[1])]
        if reset_copy is not None:
            cmd += ["--reset-copy", str(reset_copy)]
        m = procs.run(cmd, env=self.env(), log=self.log_path(name), cwd=REPO_ROOT)
        m.check()
        return m, json.loads(out.read_text())

    def warm_parse(self) -> None:
        """dbt's partial parsing as a batch finds it: warm (the previous batch left it)."""
        args = self.flow_dbt_args()
        vars_at = args.index("--vars")
        self.dbt(
            ["parse", *args[vars_at : vars_at + 2], *args[args.index("--project-dir") :]],
            "warm-parse",
        )

    def ledger_batch(self, start: datetime) -> dict[str, Any]:
        """What the flow does before dbt, outside the flow: a ledger batch `refreshing`, the
        queue refreshed from `start`, the batch `refreshed`, the snapshot pinned in the
        warehouse's landing (where dbt reads it). `dbt_env`: the batch as the flow hands it to
        dbt's process."""
        import logging

        from exigo_sync.dbt_runner import batch_env
        from exigo_sync.profiles import Target
        from exigo_sync.source.duckdb_client import DuckDbSourceClient
        from exigo_sync.warehouse import landing
        from exigo_sync.warehouse.ledger import Ledger

        slot = self.ws.slot
        warehouse = Target("duckdb", "duckdb", {"path": str(slot.warehouse)})
        with Ledger.open(warehouse) as ledger:
            batch_id = ledger.start_batch(
                flow_run_id=None, target_name=warehouse.name, window_kind="watermark",
                requested_start=start,
            )  # fmt: skip
        result = DuckDbSourceClient(slot.source).refresh(start)
        with Ledger.open(warehouse) as ledger:
            ledger.mark_refreshed(batch_id, result)
        from exigo_sync.policy import SensitivePolicy

        landing.land_in_warehouse(
            landing.SourceInWarehouse("duckdb", str(slot.source)), warehouse, batch_id,
            landing.tables_for_batch(self.settings().sweep_entities),
            logger=logging.getLogger("bench"),
            policy=SensitivePolicy.load(self.settings().dbt_project_dir),
        )  # fmt: skip
        return {
            "batch_id": batch_id,
            "queue_rows": dict(result.row_counts),
            "dbt_env": batch_env(batch_id, result.refresh_started_at),
        }

    def save(self, key: str, data: dict[str, Any]) -> None:
        self.ws.save_result(key, {**data, "key": key, "saved_at": datetime.now().isoformat()})
        self.measured.append(key)

    def repeat(
        self, measure: Callable[[int], dict[str, Any]], wall_of: Callable[[dict[str, Any]], float]
    ) -> list[dict[str, Any]]:
        """`sizes.runs` runs when the first is under `long_run_seconds`, else `long_runs`."""
        first = measure(0)
        n = (
            self.sizes.runs
            if wall_of(first) < self.sizes.long_run_seconds
            else self.sizes.long_runs
        )
        return [first, *(measure(i) for i in range(1, n))]

    # --- cached inputs ----------------------------------------------------------------------

    def sim_base(self, customers: int) -> Path:
        from exigo_sync.simulator import SyncSimulator

        path = self.ws.cache / "sims" / f"c{customers}.duckdb"
        if path.exists():
            return path
        log(f"creating a simulator of {customers:,} customers")
        tmp = path.with_name(path.stem + ".tmp.duckdb")
        SyncSimulator.create(
            tmp, seed=SEED, customers=customers, orders_per_customer=ORDERS_PER_CUSTOMER,
            overwrite=True,
        )  # fmt: skip
        tmp.replace(path)
        return path

    def history_dir(self, rows: int) -> Path:
        return self.ws.cache / f"h{label(rows)}"

    def loaded(self, rows: int) -> Path:
        """The warehouse after the full initial load of a simulator of the right size."""
        d = self.history_dir(rows)
        meta = d / "loaded.json"
        if meta.exists():
            self.record_fingerprints(rows, d)
            return d
        customers = self.sizes.customers_for(rows)
        base = self.sim_base(customers)
        slot = self.ws.slot
        copy_db(base, slot.source)
        remove_db(slot.warehouse)
        log(f"history {label(rows)}: initial load of {customers:,} customers")
        m, data = self.flow_child(f"prepare/h{label(rows)}/initial-load")
        d.mkdir(parents=True, exist_ok=True)
        save_db(slot.warehouse, d / "wh_loaded.duckdb")
        save_db(slot.source, d / "sim_loaded.duckdb")
        meta.write_text(
            json.dumps(
                {
                    "customers": customers,
                    "history_rows": history_rows(d / "wh_loaded.duckdb"),
                    "watermark": watermark(d / "wh_loaded.duckdb").isoformat(),
                    "initial_load": {"process": m.__dict__, **data},
                    "warehouse_mb": file_mb(d / "wh_loaded.duckdb"),
                    "source_mb": file_mb(d / "sim_loaded.duckdb"),
                },
                indent=1,
                default=str,
            )
        )
        return d

    def record_fingerprints(self, rows: int, d: Path) -> None:
        """A load cached before the ledger recorded the views (exigo_sync.view_definitions) and
        the lookups (exigo_sync.lookup_contents) gets one real no-change batch, which records
        them as any routine merged batch that builds them does: every measured batch then finds
        them as production's batches do."""
        if fingerprints_recorded(d / "wh_loaded.duckdb"):
            return
        slot = self.ws.slot
        copy_db(d / "wh_loaded.duckdb", slot.warehouse)
        copy_db(d / "sim_loaded.duckdb", slot.source)
        log(f"history {label(rows)}: a no-change batch records the views and the lookups")
        m, data = self.flow_child(f"prepare/h{label(rows)}/record-fingerprints")
        if not fingerprints_recorded(slot.warehouse):
            raise RuntimeError("the no-change batch recorded no views or lookups in the ledger")
        save_db(slot.warehouse, d / "wh_loaded.duckdb")
        save_db(slot.source, d / "sim_loaded.duckdb")
        shutil.rmtree(d / "analytics_loaded", ignore_errors=True)  # a copy of the old file
        info = json.loads((d / "loaded.json").read_text())
        info["fingerprints_recorded_by"] = {"process": m.__dict__, **data}
        info["watermark"] = watermark(d / "wh_loaded.duckdb").isoformat()
        (d / "loaded.json").write_text(json.dumps(info, indent=1, default=str))

    def loaded_meta(self, rows: int) -> dict[str, Any]:
        return json.loads((self.loaded(rows) / "loaded.json").read_text())

    def advanced(self, rows: int, changes: int) -> Path:
        """The simulator after activity that gives a batch of about `changes` queue rows from
        the watermark: the simulator's default activity rates scaled to its population (as
        exigo_sync.simulator.bench does) for up to 24 simulated hours, scaled up beyond that."""
        from exigo_sync.simulator import SyncSimulator
        from exigo_sync.simulator.rates import ActivityRates

        d = self.loaded(rows) / f"k{label(changes)}"
        meta = d / "advanced.json"
        if meta.exists():
            return d
        d.mkdir(parents=True, exist_ok=True)
        info = self.loaded_meta(rows)
        start = datetime.fromisoformat(info["watermark"])
        sim_loaded = self.loaded(rows) / "sim_loaded.duckdb"
        base = ActivityRates().scaled(info["customers"] / 1000)
        tmp = d / "sim_calibrating.duckdb"

        def attempt(hours: float, multiplier: float) -> int:
            copy_db(sim_loaded, tmp)
            sim = SyncSimulator(tmp)
            sim.advance(timedelta(hours=hours), base.scaled(multiplier))
            return sum(sim.refresh(start).row_counts.values())

        per_hour = attempt(1.0, 1.0)
        log(f"history {label(rows)}: {per_hour:,} queue rows per simulated hour")
        hours = changes / max(per_hour, 1)
        multiplier = 1.0
        if hours > 24:
            hours, multiplier = 24.0, hours / 24
        tries = []
        for _ in range(4):
            got = attempt(hours, multiplier)
            tries.append(
                {"hours": round(hours, 4), "multiplier": round(multiplier, 3), "changes": got}
            )
            log(f"history {label(rows)} batch {label(changes)}: {tries[-1]}")
            if abs(got - changes) <= CALIBRATION_TOLERANCE * changes:
                break
            factor = changes / max(got, 1)
            if multiplier > 1 or hours * factor > 24:
                multiplier *= factor
            else:
                hours *= factor
        tmp.replace(d / "sim_advanced.duckdb")
        meta.write_text(json.dumps({"per_hour": per_hour, "tries": tries, **tries[-1]}, indent=1))
        return d

    def analytics_loaded(self, rows: int) -> Path:
        """The analytics copy as the flow left it after the loaded warehouse's last batch and
        the one before (both slots published: the state every later batch finds), kept under
        the slot's path (each slot's record names the warehouse it copies)."""
        saved = self.loaded(rows) / "analytics_loaded"
        if saved.exists():
            return saved
        from bench.child import save_analytics_copy
        from exigo_sync.profiles import Target
        from exigo_sync.warehouse import analytics_copy

        slot = self.ws.slot
        copy_db(self.loaded(rows) / "wh_loaded.duckdb", slot.warehouse)
        dest = analytics_copy.default_path(slot.warehouse)
        dest.unlink(missing_ok=True)
        shutil.rmtree(analytics_copy.slots_dir(dest), ignore_errors=True)
        target = Target("duckdb", "duckdb", {"path": str(slot.warehouse)})
        for _ in analytics_copy.SLOTS:
            analytics_copy.publish(target, dest)
        save_analytics_copy(slot.warehouse, saved)
        return saved

    def staged(self, rows: int, changes: int) -> Path:
        """The warehouse with the batch's staging built: the floor's input. (The floor and the
        EXPLAIN ANALYZE replay read only `dbo` of the source, the same in `sim_advanced`.)"""
        d = self.advanced(rows, changes)
        if (d / "wh_staged.duckdb").exists():
            return d
        slot = self.ws.slot
        copy_db(self.loaded(rows) / "wh_loaded.duckdb", slot.warehouse)
        copy_db(d / "sim_advanced.duckdb", slot.source)
        start = datetime.fromisoformat(self.loaded_meta(rows)["watermark"])
        batch = self.ledger_batch(start - timedelta(minutes=BATCH_OVERLAP_MINUTES))
        args = self.flow_dbt_args()
        args[args.index("--select") + 1] = "tag:exigo_staging"
        self.dbt(args, f"prepare/h{label(rows)}/k{label(changes)}/staging", batch["dbt_env"])
        save_db(slot.warehouse, d / "wh_staged.duckdb")
        return d

    def snapshot_base(self, rows: int) -> Path:
        """The snapshot project's tables after a first `dbt snapshot` of the initial source."""
        d = self.loaded(rows)
        path = d / "snap_base.duckdb"
        if path.exists():
            return path
        slot = self.ws.snapshot_slot
        copy_db(d / "sim_loaded.duckdb", slot.source)
        remove_db(slot.warehouse)
        log(f"history {label(rows)}: first dbt snapshot of the source")
        procs.run(
            self.snapshot_command(), env=self.ws.base_env(), log=self.log_path(
                f"prepare/h{label(rows)}/snapshot-init"), cwd=self.ws.snapshot_project,
        ).check()  # fmt: skip
        save_db(slot.warehouse, path)
        return path

    def snapshot_command(self, command: str = "snapshot") -> list[str]:
        slot = self.ws.snapshot_slot
        profiles = snapshot.write_project(
            self.ws.snapshot_project, warehouse=slot.warehouse, source=slot.source
        )
        return [
            str(VENV_BIN / "dbt"), command,
            "--project-dir", str(self.ws.snapshot_project),
            "--profiles-dir", str(profiles),
            "--target-path", str(slot.dbt_target),
            "--log-path", str(slot.dbt_logs),
        ]  # fmt: skip

    # --- section 1 and 2: batches and the floor --------------------------------------------

    def measure_batch(self, rows: int, changes: int) -> None:
        """The flow run 1 + n times in one process on the bench's running API, every run from
        copies of the same files; the first run of the process is reported apart."""
        key = self.key("batch", f"h{label(rows)}", f"k{label(changes)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        d = self.staged(rows, changes)
        h = self.loaded(rows)
        slot = self.ws.slot
        self.warm_parse()
        log(f"batch h{label(rows)} k{label(changes)}: 1 + {self.sizes.runs} flow runs")
        m, data = self.flow_child(
            key, runs=1 + self.sizes.runs, overlap=BATCH_OVERLAP_MINUTES,
            reset=(h / "wh_loaded.duckdb", d / "sim_advanced.duckdb"),
            reset_copy=self.analytics_loaded(rows),
        )  # fmt: skip
        # Every run wrote the same: keep the last one's warehouse and SQL for the floor's
        # verification and the EXPLAIN ANALYZE replay.
        save_db(slot.warehouse, d / "wh_after_exigo.duckdb")
        dbt_sql = d / "dbt-sql"
        shutil.rmtree(dbt_sql, ignore_errors=True)
        for part in ("compiled", "run"):
            shutil.copytree(slot.dbt_target / part, dbt_sql / part)
        first, runs = data["runs"][0], data["runs"][1:]
        self.save(
            key,
            {
                "first_run": first,
                "runs": runs,
                **summarize_batch_runs(runs),
                "dbt_child_maxrss_mb": data["dbt_child_maxrss_mb"],
                "flow_process_maxrss_mb": data["flow_process_maxrss_mb"],
                "tree_peak_mb": m.tree_peak_mb,
                "history": self.loaded_meta(rows)["history_rows"],
                "calibration": json.loads((d / "advanced.json").read_text()),
            },
        )

    def measure_floor(self, rows: int, changes: int) -> None:
        key = self.key("floor", f"h{label(rows)}", f"k{label(changes)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        d = self.staged(rows, changes)
        slot = self.ws.slot

        def one(i: int) -> dict[str, Any]:
            copy_db(d / "wh_staged.duckdb", slot.warehouse)
            copy_db(d / "sim_advanced.duckdb", slot.source)
            out = self.ws.logs / "floor.json"
            log(f"floor h{label(rows)} k{label(changes)} run {i + 1}")
            m = procs.run(
                [self.python(), "-m", "bench.child", "floor", "--warehouse", str(slot.warehouse),
                 "--source", str(slot.source), "--out", str(out)],
                env=self.env(), log=self.log_path(f"{key}/run{i + 1}"), cwd=REPO_ROOT,
            ).check()  # fmt: skip
            data = json.loads(out.read_text())
            data.update(load_start=m.load_start, load_end=m.load_end)
            if i == 0:
                data["verify"] = self.verify(d, slot.warehouse)
                remove_db(d / "wh_after_exigo.duckdb")  # verified: disk is better spent
                (self.ws.root / "floor.sql").write_text(
                    floor.statements_text(
                        str(d / "wh_staged.duckdb"), str(d / "sim_advanced.duckdb")
                    )
                )
            return data

        runs = self.repeat(one, lambda r: r["wall_seconds"])
        self.save(
            key,
            {
                "runs": runs,
                "n": len(runs),
                "wall_seconds": median([r["wall_seconds"] for r in runs]),
                "history_seconds": median([r["history_seconds"] for r in runs]),
                "current_seconds": median([r["current_seconds"] for r in runs]),
                "maxrss_mb": max(r["maxrss_mb"] for r in runs),
                "verify": runs[0]["verify"],
                "rows": runs[0]["rows"],
            },
        )

    def verify(self, d: Path, floor_warehouse: Path) -> dict[str, Any]:
        exigo = d / "wh_after_exigo.duckdb"
        if not exigo.exists():
            return {"checked": False, "why": "exigo-sync's result of this batch is not kept"}
        diff = floor.compare(str(exigo), str(floor_warehouse))
        same = all(v["only_a"] == 0 and v["only_b"] == 0 for v in diff.values())
        return {"checked": True, "identical": same, "tables": diff}

    def measure_snapshot(self, rows: int, changes: int) -> None:
        key = self.key("snapshot", f"h{label(rows)}", f"k{label(changes)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        d = self.advanced(rows, changes)
        base = self.snapshot_base(rows)
        slot = self.ws.snapshot_slot
        copy_db(base, slot.warehouse)
        copy_db(d / "sim_advanced.duckdb", slot.source)
        procs.run(
            self.snapshot_command("parse"), env=self.ws.base_env(),
            log=self.log_path("snapshot-parse"), cwd=self.ws.snapshot_project,
        ).check()  # fmt: skip

        def one(i: int) -> dict[str, Any]:
            copy_db(base, slot.warehouse)
            log(f"dbt snapshot h{label(rows)} k{label(changes)} run {i + 1}")
            m = procs.run(
                self.snapshot_command(), env=self.ws.base_env(),
                log=self.log_path(f"{key}/run{i + 1}"), cwd=self.ws.snapshot_project,
            ).check()  # fmt: skip
            return {
                "wall_seconds": m.wall_seconds,
                "partial_parse_warm": parse_was_warm(Path(m.log)),
                "maxrss_mb": m.maxrss_mb,
                "tree_peak_mb": m.tree_peak_mb,
                "dbt": dbt_results.summarize(slot.run_results),
                "load_start": m.load_start,
                "load_end": m.load_end,
            }

        runs = self.repeat(one, lambda r: r["wall_seconds"])
        self.save(
            key,
            {
                "runs": runs,
                "n": len(runs),
                "wall_seconds": median([r["wall_seconds"] for r in runs]),
                "model_seconds": median([r["dbt"]["model_seconds"] for r in runs]),
                "maxrss_mb": max(r["maxrss_mb"] for r in runs),
                "command": " ".join(self.snapshot_command()),
            },
        )

    def measure_profile(self, rows: int, changes: int) -> None:
        """EXPLAIN ANALYZE of the merge models of one batch (the largest, by default)."""
        key = self.key("profile", f"h{label(rows)}", f"k{label(changes)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        d = self.staged(rows, changes)
        if not (d / "dbt-sql").exists():
            return
        slot = self.ws.slot
        copy_db(d / "wh_staged.duckdb", slot.warehouse)
        copy_db(d / "sim_advanced.duckdb", slot.source)
        log(f"EXPLAIN ANALYZE of the merge models, h{label(rows)} k{label(changes)}")
        load_start = procs.loadavg()
        entries = profile.profile_models(
            slot.warehouse,
            slot.source,
            d / "dbt-sql",
            self.ws.root / "explain" / f"h{label(rows)}-k{label(changes)}",
        )
        self.save(
            key, {"statements": entries, "load_start": load_start, "load_end": procs.loadavg()}
        )

    # --- section 4: a no-change batch ---------------------------------------------------------

    def start_from_load(self, rows: int) -> None:
        """The slot as a no-change batch finds it: copies of the loaded warehouse and its
        simulator, dbt's partial parse warm."""
        h = self.loaded(rows)
        copy_db(h / "wh_loaded.duckdb", self.ws.slot.warehouse)
        copy_db(h / "sim_loaded.duckdb", self.ws.slot.source)
        self.warm_parse()

    def measure_nochange(self, rows: int) -> None:
        key = self.key("nochange", f"h{label(rows)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        slot = self.ws.slot
        self.start_from_load(rows)
        runs = max(self.sizes.runs, 3)
        log(f"no-change h{label(rows)}: {runs + 1} flow runs in one process (running API)")
        m, warm = self.flow_child(f"{key}/flow-warm", runs=runs + 1)
        warm_runs = warm["runs"][1:]
        cold = []
        for i in range(self.sizes.cold_cli_runs):
            log(f"no-change h{label(rows)}: cold `exigo-sync run` {i + 1}")
            c = procs.run(
                [str(VENV_BIN / "exigo-sync"), "run"], env=self.env(cold=True),
                log=self.log_path(f"{key}/cli{i + 1}"), cwd=REPO_ROOT,
            ).check()  # fmt: skip
            cold.append(c.__dict__)
        # The same models with the same vars as the flow's `dbt build`, on a batch the ledger
        # has `refreshed` (what the flow leaves before dbt).
        start = watermark(slot.warehouse) - self.settings().overlap
        prepared = self.ledger_batch(start)
        args = self.flow_dbt_args()
        bare = []
        for i in range(runs):
            log(f"no-change h{label(rows)}: bare dbt build {i + 1}")
            b = self.dbt(args, f"{key}/dbt{i + 1}", prepared["dbt_env"])
            # No run_results.json: the flow's command has --no-write-json (its dbt child writes
            # the file; a bare `dbt` does not), so only the wall time is the bare build's.
            bare.append({**b.__dict__, "partial_parse_warm": parse_was_warm(Path(b.log))})
        self.save(
            key,
            {
                "flow_warm": {
                    "first_run": warm["runs"][0],
                    "runs": warm_runs,
                    "n": len(warm_runs),
                    "wall_seconds": median([r["wall_seconds"] for r in warm_runs]),
                    "dbt_step_seconds": median([r["steps"].get("dbt", 0) for r in warm_runs]),
                    "steps": {
                        s: median([r["steps"].get(s, 0.0) for r in warm_runs])
                        for s in warm_runs[0]["steps"]
                    },
                    "queue_rows": warm_runs[0]["changes"],
                    "versions": warm_runs[0]["versions"],
                    "dbt_child_maxrss_mb": warm["dbt_child_maxrss_mb"],
                    "process": m.__dict__,
                },
                "cli_cold": {
                    "runs": cold,
                    "n": len(cold),
                    "wall_seconds": median([c["wall_seconds"] for c in cold]),
                    "tree_peak_mb": max(c["tree_peak_mb"] for c in cold),
                },
                "bare_dbt": {
                    "runs": bare,
                    "n": len(bare),
                    "wall_seconds": median([b["wall_seconds"] for b in bare]),
                    "maxrss_mb": max(b["maxrss_mb"] for b in bare),
                    "command": " ".join(self.dbt_command(args)),
                    "queue_rows": sum(prepared["queue_rows"].values()),
                },
            },
        )

    def measure_layers(self, rows: int) -> None:
        """What bounds a no-change batch: the flow's `dbt build` on a no-change batch (as the
        bare build of section 4), then with fewer nodes each time (no test nodes; no marts
        either; staging alone), run as the flow runs it (its dbt child, which writes
        run_results.json), so the run phase and the nodes' compile/execute seconds of each
        are measured. Every variant is a fresh process: `dbt start` includes dbt's imports."""
        key = self.key("layers", f"h{label(rows)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        slot = self.ws.slot
        self.start_from_load(rows)
        batch = self.ledger_batch(watermark(slot.warehouse) - self.settings().overlap)
        args = self.flow_dbt_args()
        no_tests = [*args, "--exclude-resource-type", "test"]
        at = args.index("--select") + 1
        variants = {
            LAYERS_FULL: args,
            "without its test nodes": no_tests,
            LAYERS_LEAN: [
                *no_tests, "--exclude", "tag:exigo_marts", "tag:exigo_intermediate",
            ],
            "staging alone, without tests": [
                *no_tests[:at], "tag:exigo_staging", *no_tests[at + 1 :],
            ],
        }  # fmt: skip
        out: dict[str, Any] = {}
        for n, (name, variant) in enumerate(variants.items()):

            def one(i: int, n: int = n, variant: list[str] = variant) -> dict[str, Any]:
                slot.run_results.unlink(missing_ok=True)
                log(f"layers h{label(rows)}: variant {n + 1} run {i + 1}")
                m = procs.run(
                    [self.python(), "-m", "exigo_sync.child.dbt", *variant],
                    env={**self.env(), **batch["dbt_env"]},
                    log=self.log_path(f"{key}/v{n + 1}-{i + 1}"), cwd=REPO_ROOT,
                ).check()  # fmt: skip
                return {**m.__dict__, "dbt": dbt_results.summarize(slot.run_results)}

            runs = self.repeat(one, lambda r: r["wall_seconds"])
            out[name] = {
                "runs": runs,
                "n": len(runs),
                "wall_seconds": median([r["wall_seconds"] for r in runs]),
                "dbt_elapsed": median([r["dbt"]["dbt_elapsed"] for r in runs]),
                "nodes": runs[0]["dbt"]["nodes"],
                "step_seconds": {
                    s: median([r["dbt"]["step_seconds"].get(s, 0.0) for r in runs])
                    for s in ("compile", "execute")
                },
                "command": " ".join(["python -m exigo_sync.child.dbt", *variant]),
            }
        self.save(key, {"variants": out})

    # --- sections 5 and 6: the initial load and the simulator -------------------------------

    def sim_bench_path(self) -> Path:
        return self.ws.cache / "sim-bench" / f"c{self.sizes.simulator_customers}.duckdb"

    def measure_simulator(self) -> None:
        key = self.key("simulator", f"c{label(self.sizes.simulator_customers)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        path = self.sim_bench_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        out = self.ws.logs / "sim-bench.json"
        command = [
            self.python(), "-m", "exigo_sync.simulator.bench",
            "--customers", str(self.sizes.simulator_customers), "--path", str(path), "--json",
        ]  # fmt: skip

        def one(i: int) -> dict[str, Any]:
            log(f"simulator bench, {self.sizes.simulator_customers:,} customers, run {i + 1}")
            m = procs.run(command, env=self.ws.base_env(), log=out, cwd=REPO_ROOT).check()
            data = json.loads(out.read_text().strip().splitlines()[-1])
            return {"process": m.__dict__, **data}

        runs = self.repeat(one, lambda r: r["create"]["wall_seconds"])
        self.save(
            key,
            {
                "runs": runs,
                "n": len(runs),
                "create_seconds": median([r["create"]["wall_seconds"] for r in runs]),
                "advance_seconds": median([r["advance"]["wall_seconds"] for r in runs]),
                "refresh_seconds": median([r["refresh"]["wall_seconds"] for r in runs]),
                "process_seconds": median([r["process"]["wall_seconds"] for r in runs]),
                "maxrss_mb": max(r["process"]["maxrss_mb"] for r in runs),
                "command": " ".join(["python", *command[1:]]),
            },
        )

    def initial_load_source(self) -> Path:
        """The source of the initial load: the simulator of section 6 when it has the size."""
        customers = self.sizes.initial_load_customers
        source = self.sim_bench_path()
        if customers != self.sizes.simulator_customers or not source.exists():
            source = self.sim_base(customers)
        return source

    def measure_initial_load(self, topology: str = "colocated") -> None:
        """The first batch, end to end as `exigo-sync run`: co-located (the warehouse copies
        the queue from the attached simulator file) or landed (the flow streams it across)."""
        customers = self.sizes.initial_load_customers
        key = self.key(INITIAL_LOAD_KEYS[topology], f"c{label(customers)}")
        if not self.wanted(key) or self.cached_result(key):
            return
        source = self.initial_load_source()
        slot = self.ws.slot
        env = self.env(cold=True)
        if topology == "landed":
            env.update(LANDED_ENV)

        def one(i: int) -> dict[str, Any]:
            copy_db(source, slot.source)
            remove_db(slot.warehouse)
            log(
                f"initial load of {customers:,} customers, {topology} (`exigo-sync run`), "
                f"run {i + 1}"
            )
            m = procs.run(
                [str(VENV_BIN / "exigo-sync"), "run"], env=env,
                log=self.log_path(f"{key}/run{i + 1}"), cwd=REPO_ROOT,
            ).check()  # fmt: skip
            return {
                **m.__dict__,
                "dbt": dbt_results.summarize(slot.run_results),
                "history_rows": history_rows(slot.warehouse),
                "warehouse_mb": file_mb(slot.warehouse),
                "pinned_seconds": pinned_seconds(self.log_path(f"{key}/run{i + 1}")),
            }

        runs = self.repeat(one, lambda r: r["wall_seconds"])
        self.save(
            key,
            {
                "runs": runs,
                "n": len(runs),
                "wall_seconds": median([r["wall_seconds"] for r in runs]),
                "tree_peak_mb": max(r["tree_peak_mb"] for r in runs),
                "dbt_child_polled_mb": max(r["dbt_child_polled_mb"] for r in runs),
                "source_rows": source_rows(source),
                "topology": topology,
                "command": "exigo-sync run",
                "env": {k: v for k, v in env.items() if k in LANDED_ENV},
            },
        )

    def measure_landing(self) -> None:
        """The snapshot's copy alone, each way it can reach a DuckDB warehouse (LANDING_WAYS),
        each saved as a figure of its own, on a source of `landing_customers`."""
        customers = self.sizes.landing_customers
        slot = self.ws.slot
        for way, extra in LANDING_WAYS.items():
            key = self.key("landing", f"c{label(customers)}", way)
            if not self.wanted(key) or self.cached_result(key):
                continue
            refreshed = self.refreshed_source(customers)
            out = self.ws.logs / f"landing-{way}.json"
            one = functools.partial(self.landing_run, key, refreshed, extra, out)
            runs = self.repeat(one, lambda r: r["wall_seconds"])
            remove_db(slot.warehouse)
            rows = sum(runs[0]["rows"].values())
            wall = median([r["wall_seconds"] for r in runs])
            self.save(
                key,
                {
                    "runs": runs,
                    "n": len(runs),
                    "wall_seconds": wall,
                    "rows": rows,
                    "rows_per_second": rows / wall if wall else None,
                    "maxrss_mb": max(r["maxrss_mb"] for r in runs),
                    "tree_peak_mb": max(r["process"]["tree_peak_mb"] for r in runs),
                    "source_rows": source_rows(refreshed),
                    "command": " ".join(["python -m bench.child landing", *extra]),
                },
            )

    def landing_run(self, key: str, source: Path, extra: list[str], out: Path, i: int) -> dict:
        """One `python -m bench.child landing` into an empty warehouse."""
        slot = self.ws.slot
        remove_db(slot.warehouse)
        out.unlink(missing_ok=True)
        log(f"{key}, run {i + 1}")
        m = procs.run(
            [
                self.python(), "-m", "bench.child", "landing", "--source", str(source),
                "--warehouse", str(slot.warehouse), *extra, "--out", str(out),
            ],
            env=self.env(), log=self.log_path(f"{key}/run{i + 1}"), cwd=REPO_ROOT,
        ).check()  # fmt: skip
        return {"process": m.__dict__, **json.loads(out.read_text())}

    def refreshed_source(self, customers: int) -> Path:
        """A copy of a source of `customers` whose queue holds every row (refreshed from the
        start of time, as the first batch's refresh)."""
        refreshed = self.ws.cache / "sims" / f"c{customers}-refreshed.duckdb"
        if not refreshed.exists():
            from exigo_sync.source.duckdb_client import DuckDbSourceClient
            from exigo_sync.window import FULL_LOAD_START

            log(f"refreshing a copy of the {customers:,}-customer source from {FULL_LOAD_START}")
            tmp = refreshed.with_name(refreshed.stem + ".tmp.duckdb")
            source = (
                self.initial_load_source()
                if customers == self.sizes.initial_load_customers
                else self.sim_base(customers)
            )
            copy_db(source, tmp)
            DuckDbSourceClient(tmp).refresh(FULL_LOAD_START)  # W1: the first batch, all rows
            tmp.replace(refreshed)
        return refreshed


def summarize_batch_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(f: Callable[[dict[str, Any]], float]) -> float:
        return median([f(r) for r in runs])

    def layer(r: dict[str, Any], name: str) -> float:
        return float(r["dbt"]["by_layer"].get(name, 0.0))

    return {
        "n": len(runs),
        "changes": runs[0]["changes"],
        "versions": runs[0]["versions"],
        "wall_seconds": med(lambda r: r["wall_seconds"]),
        "dbt_step_seconds": med(lambda r: r["steps"].get("dbt", 0.0)),
        "ledger_step_seconds": med(lambda r: r["steps"].get("ledger", 0.0)),
        "refresh_step_seconds": med(lambda r: r["steps"].get("refresh", 0.0)),
        "steps": {s: med(lambda r, s=s: r["steps"].get(s, 0.0)) for s in runs[0]["steps"]},
        "model_seconds": med(lambda r: r["dbt"]["model_seconds"]),
        "dbt_elapsed": med(lambda r: r["dbt"]["dbt_elapsed"]),
        "merge_model_seconds": med(lambda r: layer(r, "history") + layer(r, "current")),
        "by_layer": {k: med(lambda r, k=k: layer(r, k)) for k in runs[0]["dbt"]["by_layer"]},
        "partial_parse_warm": [r.get("partial_parse_warm") for r in runs],
    }


def parse_was_warm(log: Path) -> bool:
    """dbt says so on its console when it cannot reuse its partial parse."""
    return "Unable to do partial parsing" not in log.read_text(errors="replace")


def pinned_seconds(log: Path) -> float | None:
    """How long the batch took to pin its snapshot (the `land` step's copy), as the flow's
    own console line says: "batch N: pinned T tables, R rows in S s (...)"."""
    text = log.read_text(errors="replace")
    found = re.findall(r"pinned \d+ tables, [\d,]+ rows in ([\d.]+) s", text)
    return float(found[-1]) if found else None


def history_rows(warehouse: Path) -> dict[str, int]:
    import duckdb

    from exigo_sync.catalog import REPLICATED_ENTITY_NAMES

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            e: int(con.execute(f"SELECT count(*) FROM exigo_history.{e}_history").fetchone()[0])
            for e in REPLICATED_ENTITY_NAMES
        }
    finally:
        con.close()


def source_rows(source: Path) -> dict[str, int]:
    from exigo_sync.simulator import SyncSimulator

    return SyncSimulator(source).row_counts()


def fingerprints_recorded(warehouse: Path) -> bool:
    """The ledger holds the fingerprints of the views and the lookups a merged batch built."""
    import duckdb

    from exigo_sync.warehouse import ledger_sql as q

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = {
            c
            for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = 'batches'",
                [q.SCHEMA],
            ).fetchall()
        }
        if not set(q.FINGERPRINTS.values()) <= columns:
            return False
        recorded = [con.execute(q.last_fingerprint(part)).fetchone() for part in q.FINGERPRINTS]
        return all(row is not None and row[0] not in (None, q.PENDING) for row in recorded)
    finally:
        con.close()


def watermark(warehouse: Path) -> datetime:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (value,) = con.execute(
            "SELECT max(refresh_started_at) FROM exigo_sync.batches WHERE status = 'merged'"
        ).fetchone()
        return value
    finally:
        con.close()


@contextmanager
def prefect_server(ws: Workspace) -> Iterator[str]:
    """One Prefect API for the whole benchmark (as `serve` and deployments run): exigo-sync's
    own private server (exigo_sync.prefect_api), started once."""
    os.environ["PREFECT_HOME"] = str(ws.prefect_home("server"))
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
    from exigo_sync.prefect_api import prefect_api

    started = time.perf_counter()
    with prefect_api() as url:
        log(f"Prefect API at {url} (started in {time.perf_counter() - started:.1f} s)")
        yield url


def run_all(bench: Bench) -> None:
    s = bench.sizes
    # The slot's paths are fixed: the harness's own dbt profile renders them too.
    os.environ.update({k: v for k, v in bench.env().items() if k.startswith(("EXIGO_SYNC_",))})
    with prefect_server(bench.ws) as url:
        bench.api_url = url
        bench.measure_simulator()
        for rows in s.history_rows:
            for changes in s.batch_changes:
                bench.measure_batch(rows, changes)
                bench.measure_floor(rows, changes)
                bench.measure_snapshot(rows, changes)
        bench.measure_profile(max(s.history_rows), max(s.batch_changes))
        for rows in s.history_rows:
            bench.measure_nochange(rows)
        bench.measure_layers(min(s.history_rows))
        bench.measure_initial_load()
        bench.measure_landing()
        bench.measure_initial_load("landed")
