"""BENCHMARKS.md from the saved results (`python -m bench report` re-renders it)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.run import LANDED_ENV, LANDING_WAYS, LAYERS_FULL, LAYERS_LEAN
from bench.sizes import Sizes, label
from bench.workspace import REPO_ROOT, Workspace

SECTIONS = (
    "## Machine and versions",
    "## Targets",
    "## 1. A batch merged into history",
    "## 2. The floor: hand-written DuckDB SCD2",
    "## 3. The usual dbt alternative: `dbt snapshot` of the full source tables",
    "## 4. A no-change batch: the flow against a bare `dbt build`",
    "## 5. The initial load",
    "## 6. Simulator generation",
    "## Where the time goes: EXPLAIN ANALYZE of the largest batch",
    "## What bounds the targets missed",
    "## Commands",
)
ANALYSIS = REPO_ROOT / "bench" / "analysis.md"

GB4 = 4 * 1024


def _s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def _mb(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return a / b


def _r(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}x"


def _load(r: dict[str, Any]) -> str:
    start, end = r.get("load_start"), r.get("load_end")
    if not start or not end:
        return "—"
    return f"{start[0]:.2f} → {end[0]:.2f}"


def _loads(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "—"
    return f"{_load(runs[0])}" + (f" … {_load(runs[-1])}" if len(runs) > 1 else "")


def _met(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def header(*names: str) -> str:
    return row(*names) + "\n" + row(*["---"] * len(names))


def _grow(big: dict[str, Any], small: dict[str, Any], field: str) -> str:
    return _r(_ratio(big[field], small[field]))


SPLIT_LAYERS = ("staging", "history", "current", "marts", "tests")
# The flow step that publishes the DuckDB warehouse's read-only copy (exigo_sync.batch).
ANALYTICS_COPY_STEP = "analytics copy"
# #21's targets, judged in the targets table and explained in the bounds section.
NO_CHANGE_RUNNING_API_S = 5.0
NO_CHANGE_COLD_CLI_S = 10.0
FLOOR_RATIO = 3.0


def _copy_seconds(batch: dict[str, Any]) -> float:
    """A batch's median analytics-copy step (0 where the copy is off)."""
    return float(batch.get("steps", {}).get(ANALYTICS_COPY_STEP, 0.0))


def _without_copy(batch: dict[str, Any]) -> float:
    """A batch's median wall time less its median analytics-copy step."""
    return batch["wall_seconds"] - _copy_seconds(batch)


def time_split(runs: list[dict[str, Any]]) -> list[float]:
    """Per run: flow outside dbt and the analytics copy, the DuckDB analytics copy, dbt start,
    each layer's node time, dbt's other run time; the median of each over the runs."""
    cols: list[list[float]] = []
    for r in runs:
        dbt_step, dbt = r["steps"].get("dbt", 0.0), r["dbt"]
        copy = _copy_seconds(r)
        layers = [float(dbt["by_layer"].get(x, 0.0)) for x in SPLIT_LAYERS]
        cols.append(
            [
                r["wall_seconds"] - dbt_step - copy,
                copy,
                dbt_step - dbt["dbt_elapsed"],
                *layers,
                dbt["dbt_elapsed"] - sum(dbt["by_layer"].values()),
            ]
        )
    return [statistics.median(c) for c in zip(*cols, strict=True)]


def _node_work(runs: list[dict[str, Any]]) -> str:
    """The median run's dbt nodes and their node-seconds by timing step (`step_seconds`)."""
    dbts = [r["dbt"] for r in runs if r.get("dbt")]
    if not dbts:
        return "dbt's nodes not recorded"
    nodes = statistics.median(d["nodes"] for d in dbts)
    steps = [d.get("step_seconds") for d in dbts]
    if not all(steps):
        return f"{nodes:.0f} dbt nodes, their compile/execute split not recorded in this run"
    compile_s = statistics.median(x.get("compile", 0.0) for x in steps)
    execute_s = statistics.median(x.get("execute", 0.0) for x in steps)
    per_node = (compile_s + execute_s) / nodes * 1000 if nodes else 0.0
    return (
        f"{nodes:.0f} dbt nodes, {compile_s:.2f} node-seconds compiling (rendering each "
        f"node's Jinja, with the queries its macros make) and {execute_s:.2f} executing "
        f"(its statements and dbt's around them): {per_node:.0f} ms per node"
    )


def _split_text(runs: list[dict[str, Any]]) -> str:
    names = ("flow", "copy", "dbt start", *SPLIT_LAYERS, "dbt other")
    return ", ".join(f"{n} {v:.2f}" for n, v in zip(names, time_split(runs), strict=True))


def bounds(res: Results, sizes: Sizes, merge_sql: float | None) -> list[str]:
    """Where the time of each missed target goes, from the figures above: the batch's time
    split (`time_split`), dbt's nodes and their compile/execute node-seconds, the merge's own
    SQL (the EXPLAIN ANALYZE replay) and what a cold process adds."""
    out: list[str] = []
    w = out.append
    hs, ks = sizes.history_rows, sizes.batch_changes
    hmin, hmax, kmin, kmax = min(hs), max(hs), min(ks), max(ks)
    w(
        "Each paragraph decomposes one target's measured time with the figures above (seconds, "
        "medians): the flow outside dbt, the analytics copy, the dbt child's start, dbt's run "
        "phase by layer, and dbt's nodes with the node-seconds dbt records for compiling and "
        "executing them (run_results.json `timing`; with 2 threads they add up to more than the "
        "run phase).\n"
    )
    nc = res.get("nochange", f"h{label(hmin)}")
    if nc is not None:
        fw, cold = nc["flow_warm"], nc["cli_cold"]
        verdict = "met" if fw["wall_seconds"] <= NO_CHANGE_RUNNING_API_S else "missed"
        w(
            f"- **No-change batch on a running API ({label(hmin)} history, {verdict}):** "
            f"{_s(fw['wall_seconds'])} s = {_split_text(fw['runs'])}; "
            f"{_node_work(fw['runs'])}. No model finds work (the window re-delivers rows that "
            f"change nothing), so this is the fixed cost of a batch. The same `dbt build` "
            f"alone took {_s(nc['bare_dbt']['wall_seconds'])} s: the bound is dbt's cost per "
            "node times the nodes a batch runs (staging with its checks, history, current "
            "state, marts, the batch's tests), not the SQL."
        )
        layers = res.get("layers", f"h{label(hmin)}")
        if layers is not None:
            w(
                f"\n  The same no-change batch's `dbt build` ({label(hmin)} history) with fewer "
                "nodes, each a new process as the flow starts it (`wall` includes dbt's imports, "
                "which the flow's fork server saves a batch; `run phase` does not; it may have "
                "run in another session than the figures above, so compare within this "
                "table):\n"
            )
            columns = "dbt build | nodes | wall s | run phase s | compile node-s | execute node-s"
            w(f"  | {columns} | n |")
            w("  | --- | --- | --- | --- | --- | --- | --- |")
            by_nodes = sorted(layers["variants"].items(), key=lambda kv: -kv[1]["nodes"])
            for name, v in by_nodes:
                steps = v["step_seconds"]
                w(
                    f"  | {name} | {v['nodes']} | {_s(v['wall_seconds'])} | "
                    f"{_s(v['dbt_elapsed'])} | {_s(steps['compile'])} | {_s(steps['execute'])} | "
                    f"{v['n']} |"
                )
            variants = layers["variants"]
            if {LAYERS_FULL, LAYERS_LEAN} <= variants.keys():
                flow_s, copy_s, start_s = time_split(fw["runs"])[:3]
                lean, full = variants[LAYERS_LEAN], variants[LAYERS_FULL]
                w(
                    f"\n  Without a single test or mart, dbt's run phase is still "
                    f"{_s(lean['dbt_elapsed'])} s for {lean['nodes']} nodes (staging, history, "
                    f"current state), against {_s(full['dbt_elapsed'])} s for the batch's "
                    f"{full['nodes']}; with the no-change batch's dbt start ({_s(start_s)} s), "
                    f"flow ({_s(flow_s)} s) and copy ({_s(copy_s)} s), such a batch would take "
                    f"about {_s(lean['dbt_elapsed'] + start_s + flow_s + copy_s)} s."
                )
            w("")
        verdict = "met" if cold["wall_seconds"] <= NO_CHANGE_COLD_CLI_S else "missed"
        w(
            f"- **Cold `exigo-sync run` ({label(hmin)} history, {verdict}):** "
            f"{_s(cold['wall_seconds'])} s, {_s(cold['wall_seconds'] - fw['wall_seconds'])} s "
            "more than the same flow in a running process: a new interpreter's imports "
            "(Prefect, dbt in the fork server) and the private Prefect API the CLI starts when "
            "no `PREFECT_API_URL` is set. A deployment or `exigo-sync serve` pays it once."
        )
    b = res.batch(hmax, kmax)
    fl = res.floor(hmax, kmax)
    if b is not None and fl is not None:
        ratio = _ratio(b["wall_seconds"], fl["wall_seconds"])
        verdict = "met" if ratio is not None and ratio <= FLOOR_RATIO else "missed"
        sql = (
            f"the merge models' own SQL (EXPLAIN ANALYZE replay) {merge_sql:.2f} s of the "
            f"{_s(b['merge_model_seconds'])} s their nodes took"
            if merge_sql is not None
            else "the merge SQL not profiled"
        )
        w(
            f"- **{label(kmax)}-change batch into {label(hmax)} history against the floor "
            f"({_r(ratio)}, {verdict}):** batch {_s(b['wall_seconds'])} s = "
            f"{_split_text(b['runs'])}; {_node_work(b['runs'])}; {sql}. The floor "
            f"({_s(fl['wall_seconds'])} s) is one process running the merge's statements "
            "and nothing else: no staging checks, no tests, no ledger, no Prefect, no copy."
        )
    for h in sorted({hmin, hmax}):
        bt, sn = res.batch(h, kmin), res.snapshot(h, kmin)
        if bt is None or sn is None:
            continue
        g = _ratio(sn["wall_seconds"], bt["wall_seconds"])
        verdict = "met" if g is not None and g > 1 else "missed"
        w(
            f"- **Against the full-table `dbt snapshot` ({label(h)} history, "
            f"{label(kmin)} changes: {_r(g)} as fast, {verdict}):** the snapshot "
            f"{_s(sn['wall_seconds'])} s: {_node_work(sn['runs'])}; the batch "
            f"{_s(bt['wall_seconds'])} s: {_node_work(bt['runs'])}. The snapshot reads every "
            "source row each time, so its cost grows with the source; the batch's grows with "
            "the batch, and its fixed cost is its nodes."
        )
    w("")
    return out


def _reproduce(sizes: Sizes, only: str) -> str:
    return f"`make bench BENCH_SIZES={sizes.name} BENCH_ARGS='--only {only} --rerun'`"


class Results:
    def __init__(self, ws: Workspace, sizes: Sizes) -> None:
        self.ws, self.sizes = ws, sizes

    def get(self, *parts: str) -> dict[str, Any] | None:
        return self.ws.load_result("/".join([self.sizes.name, *parts]))

    def batch(self, h: int, k: int) -> dict[str, Any] | None:
        return self.get("batch", f"h{label(h)}", f"k{label(k)}")

    def floor(self, h: int, k: int) -> dict[str, Any] | None:
        return self.get("floor", f"h{label(h)}", f"k{label(k)}")

    def snapshot(self, h: int, k: int) -> dict[str, Any] | None:
        return self.get("snapshot", f"h{label(h)}", f"k{label(k)}")


def render(ws: Workspace, sizes: Sizes) -> str:
    res = Results(ws, sizes)
    meta = res.get("meta") or {}
    hs, ks = sizes.history_rows, sizes.batch_changes
    out: list[str] = []
    w = out.append
    w("# Benchmarks\n")
    w(
        f"Generated by `make bench BENCH_SIZES={sizes.name}` (`python -m bench run --sizes "
        f"{sizes.name}`, the harness in `bench/`) from the results it saved under "
        "`bench/.work/results/`. Every figure is the **median** of the runs it says (`n`): "
        f"{sizes.runs} when a run takes under {sizes.long_run_seconds:.0f} s, otherwise "
        f"{sizes.long_runs}. Every run starts from a copy of the same files. The machine's "
        "2 cores are shared with other jobs, so the load average (1 minute, from "
        "`/proc/loadavg`) is given at the start and end of every measurement (`load`).\n"
    )

    # --- machine ---------------------------------------------------------------------------
    w(SECTIONS[0] + "\n")
    m, v = meta.get("machine") or {}, meta.get("versions") or {}
    w(
        f"- machine: {m.get('cores', '?')} cores ({m.get('cpu_model', '?')}), "
        f"{m.get('memory_gib', '?')} GiB memory, {m.get('os', '?')}"
    )
    w("- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    for s in meta.get("sessions") or []:
        w(
            f"- session {s['started']} → {s.get('ended', '?')}: load {s['load_start'][0]:.2f} → "
            f"{s.get('load_end', ['?'])[0]}, {len(s.get('measured') or [])} figure(s) measured "
            f"(`python -m bench {' '.join(s.get('argv') or [])}`)"
        )
    w("")

    # --- targets ---------------------------------------------------------------------------
    w(SECTIONS[1] + "\n")
    w("| target | measured | ratio | |")
    w("| --- | --- | --- | --- |")
    hmax, hmin, kmax = max(hs), min(hs), max(ks)
    growth = hmax / hmin if hmin else 0
    for h in hs:
        for k in ks:
            bb, sn = res.batch(h, k), res.snapshot(h, k)
            g = _ratio(sn and sn["wall_seconds"], bb and bb["wall_seconds"])
            w(
                f"| faster than the full-table `dbt snapshot` ({label(h)} history, {label(k)} "
                f"changes) | snapshot {_s(sn and sn['wall_seconds'])} s, batch "
                f"{_s(bb and bb['wall_seconds'])} s | {_r(g)} as fast | "
                f"{_met(None if g is None else g > 1)} |"
            )
    b, f = res.batch(hmax, kmax), res.floor(hmax, kmax)
    r1 = _ratio(b and b["wall_seconds"], f and f["wall_seconds"])
    w(
        f"| {label(kmax)}-change batch into {label(hmax)} history ≤ {FLOOR_RATIO:g}x the "
        f"hand-written floor, end to end on a running API | batch {_s(b and b['wall_seconds'])} "
        f"s (flow run), floor {_s(f and f['wall_seconds'])} s | {_r(r1)} | "
        f"{_met(None if r1 is None else r1 <= FLOOR_RATIO)} |"
    )
    for h in hs:
        nc = res.get("nochange", f"h{label(h)}")
        if nc is None:
            w(f"| no-change batch ({label(h)} history) | not measured | — | not measured |")
            continue
        fw, cold = nc["flow_warm"]["wall_seconds"], nc["cli_cold"]["wall_seconds"]
        w(
            f"| no-change batch ≤ {NO_CHANGE_RUNNING_API_S:g} s on a running API, ≤ "
            f"{NO_CHANGE_COLD_CLI_S:g} s as a cold `exigo-sync run` ({label(h)} history) | "
            f"running API {_s(fw)} s; cold CLI {_s(cold)} s | "
            f"{_r(_ratio(fw, NO_CHANGE_RUNNING_API_S))} / {_r(_ratio(cold, NO_CHANGE_COLD_CLI_S))} "
            f"of the targets | running API {_met(fw <= NO_CHANGE_RUNNING_API_S)}, cold CLI "
            f"{_met(cold <= NO_CHANGE_COLD_CLI_S)} |"
        )
    for k in ks:
        big, small = res.batch(hmax, k), res.batch(hmin, k)
        copy_big, copy_small = big and _copy_seconds(big), small and _copy_seconds(small)
        g = _ratio(copy_big, copy_small)
        w(
            f"| publishing the analytics copy grows ≤ 1.5x when history grows {growth:g}x "
            f"({label(k)} changes) | {label(hmin)}: {_s(copy_small)} s, {label(hmax)}: "
            f"{_s(copy_big)} s | {_r(g)} | {_met(None if g is None else g <= 1.5)} |"
        )
        g = _ratio(big and big["wall_seconds"], small and small["wall_seconds"])
        without = _ratio(big and _without_copy(big), small and _without_copy(small))
        w(
            f"| batch cost grows ≤ 3x when history grows {growth:g}x ({label(k)} changes) | "
            f"{label(hmin)}: {_s(small and small['wall_seconds'])} s, {label(hmax)}: "
            f"{_s(big and big['wall_seconds'])} s | {_r(g)} ({_r(without)} without the "
            f"analytics copy) | {_met(None if g is None else g <= 3)} |"
        )
    il = res.get("initial_load", f"c{label(sizes.initial_load_customers)}")
    landed = res.get("initial_load_landed", f"c{label(sizes.initial_load_customers)}")
    for way, load in (("", il), (", landed", landed)):
        w(
            f"| initial load of {label(sizes.initial_load_customers)} customers{way}, peak "
            f"memory ≤ 4 GB | peak RSS of the process tree {_mb(load and load['tree_peak_mb'])} "
            f"MB, wall {_s(load and load['wall_seconds'])} s | "
            f"{_r(_ratio(load and load['tree_peak_mb'], GB4))} of 4 GiB | "
            f"{_met(None if load is None else load['tree_peak_mb'] <= GB4)} |"
        )
    sim = res.get("simulator", f"c{label(sizes.simulator_customers)}")
    w(
        f"| simulator {label(sizes.simulator_customers)} customers ≤ 2 minutes | create "
        f"{_s(sim and sim['create_seconds'])} s | {_r(_ratio(sim and sim['create_seconds'], 120))} "
        f"of 2 min | {_met(None if sim is None else sim['create_seconds'] <= 120)} |"
    )
    w("")

    # --- 1. batches ------------------------------------------------------------------------
    w(SECTIONS[2] + "\n")
    w(
        "A batch = one run of the `exigo-sync` flow on the bench's running Prefect API: one "
        "process runs it 1 + n times, every run from copies of the same files; the process's "
        "first run is shown apart, the figures are the median of the n after it. A run: "
        "lock, window, `queue.Refresh`, `dbt build` of staging + history + current + marts "
        "with the batch's tests (in a child process), "
        "ledger statistics, report. The warehouse is a full initial load of a simulator of the "
        "right size (5 orders per customer); the batch is the simulator's own activity (default "
        "rates scaled to the population, for up to 24 simulated hours, faster beyond), so all "
        "six entities change in the simulator's proportions. The window starts at the "
        "watermark itself (`overlap_minutes=0`; see `bench/run.py`). `changes` = queue rows "
        "of the batch (six tables); `versions` = history rows the batch opened. `wall` = the "
        "whole flow run; `dbt` = the flow's dbt step (child process, including dbt's start and "
        "parse); `models` = the model nodes' share of dbt's run phase (history + current in "
        "brackets): dbt runs two threads, so each moment is shared equally among the nodes "
        "running then (from run_results.json's timings), and an overlapped second is not "
        "counted twice; `tests` likewise; `ledger` = the statistics step; memory = max RSS "
        "of the dbt child (`RUSAGE_CHILDREN`) and of the whole process tree (polled).\n"
    )
    w(
        header(
            "history rows",
            "changes",
            "versions",
            "n",
            "wall s",
            "first run in process s",
            "dbt step s",
            "models s (hist+cur)",
            "tests s",
            "ledger s",
            "dbt child MB",
            "tree MB",
            "load",
        )
    )
    for h in hs:
        for k in ks:
            r = res.batch(h, k)
            if r is None:
                w(f"| {label(h)} | {label(k)} | not measured |||||||||")
                continue
            hist = sum(r["history"].values())
            ver = r["versions"]
            w(
                row(
                    f"{hist:,}",
                    f"{r['changes']:,}",
                    f"{sum(ver.values()):,}",
                    r["n"],
                    _s(r["wall_seconds"]),
                    _s(r["first_run"]["wall_seconds"]),
                    _s(r["dbt_step_seconds"]),
                    f"{_s(r['model_seconds'])} ({_s(r['merge_model_seconds'])})",
                    _s(r["by_layer"].get("tests")),
                    _s(r["ledger_step_seconds"]),
                    _mb(r["dbt_child_maxrss_mb"]),
                    _mb(r["tree_peak_mb"]),
                    _loads(r["runs"]),
                )
            )
    w("")
    w(
        "Where a batch's wall time goes (medians): `flow` = the flow run outside dbt and the "
        "analytics copy (lock, window, refresh, ledger, Prefect task and artifact calls); "
        "`copy` = publishing the DuckDB analytics copy (the batch's changes applied to the "
        "standby copy file, which the run finds as the previous batch left it, one batch behind; "
        "`EXIGO_SYNC_ANALYTICS_COPY_PATH=off` where nobody reads the file during a sync); "
        "`dbt start` = the dbt "
        "child's life outside its run phase (interpreter and dbt imports, profile, partial "
        "parse, manifest); then dbt's run phase (run_results.json `elapsed_time`) by layer "
        "(each moment shared among the nodes running then), `dbt other` being the run phase "
        "when no node ran.\n"
    )
    w(
        header(
            "history",
            "changes",
            "flow",
            "copy",
            "dbt start",
            "staging",
            "history",
            "current",
            "marts",
            "tests",
            "dbt other",
        )
    )
    for h in hs:
        for k in ks:
            r = res.batch(h, k)
            if r is None:
                continue
            w(row(label(h), label(k), *(_s(x) for x in time_split(r["runs"]))))
    w("")
    w("Growth at a fixed batch size (largest over smallest history):\n")
    for k in ks:
        big, small = res.batch(hmax, k), res.batch(hmin, k)
        if big and small:
            grown = sum(big["history"].values()) / max(sum(small["history"].values()), 1)
            w(
                f"- {label(k)} changes: wall {_grow(big, small, 'wall_seconds')}, dbt step "
                f"{_grow(big, small, 'dbt_step_seconds')}, history+current models "
                f"{_grow(big, small, 'merge_model_seconds')}, ledger step "
                f"{_grow(big, small, 'ledger_step_seconds')} (history {grown:.0f}x larger)"
            )
    w("")

    # --- 2. floor --------------------------------------------------------------------------
    w(SECTIONS[3] + "\n")
    w(
        "The same merge as hand-written DuckDB statements per entity (`bench/floor.py`: a temp "
        "table of the rows that open a version, with the order-line and payment deletions; "
        "UPDATE to close the current rows; INSERT the new versions; DELETE + INSERT of the "
        "current-state rows), on a copy of the warehouse with the batch's staging tables "
        "already built (the same staging rows exigo-sync merges). Timed from connect to close, "
        "in a process of its own. `identical` = after the floor, every history and current "
        "table holds exactly the rows exigo-sync's batch left (every column including "
        "intervals, hashes, batch ids and version ids, compared as multisets both ways).\n"
    )
    w(
        "| history | changes | n | floor s (history + current) | batch wall / floor | "
        "dbt step / floor | hist+cur models / floor | identical | floor MB | load |"
    )
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for h in hs:
        for k in ks:
            fl, bt = res.floor(h, k), res.batch(h, k)
            if fl is None:
                w(f"| {label(h)} | {label(k)} | not measured ||||||||")
                continue
            ver = fl.get("verify") or {}
            ident = "yes" if ver.get("identical") else ("**no**" if ver.get("checked") else "—")
            merge_floor = fl["history_seconds"] + fl["current_seconds"]
            w(
                f"| {label(h)} | {label(k)} | {fl['n']} | {_s(fl['wall_seconds'])} "
                f"({_s(fl['history_seconds'])} + {_s(fl['current_seconds'])}) | "
                f"{_r(_ratio(bt and bt['wall_seconds'], fl['wall_seconds']))} | "
                f"{_r(_ratio(bt and bt['dbt_step_seconds'], fl['wall_seconds']))} | "
                f"{_r(_ratio(bt and bt['merge_model_seconds'], merge_floor))} | {ident} | "
                f"{_mb(fl['maxrss_mb'])} | {_loads(fl['runs'])} |"
            )
    w("")
    bad = [
        (h, k)
        for h in hs
        for k in ks
        if (res.floor(h, k) or {}).get("verify", {}).get("checked")
        and not res.floor(h, k)["verify"]["identical"]
    ]
    for h, k in bad:
        diff = {
            t: d
            for t, d in res.floor(h, k)["verify"]["tables"].items()
            if d["only_a"] or d["only_b"]
        }
        w(f"- h{label(h)} k{label(k)}: tables that differ: {diff}")
    w("The floor's statements for one batch are in `bench/.work/floor.sql` after a run.\n")

    # --- 3. snapshot -----------------------------------------------------------------------
    w(SECTIONS[4] + "\n")
    w(
        "A throw-away dbt project generated under `bench/.work/snapshot_project` "
        "(`bench/snapshot.py`): one snapshot per source table (`dbo.*`, attached read-only as "
        "in exigo-sync's profile, threads 1), timestamp strategy on `ModifiedDate`, check "
        "strategy on all columns for `OrderDetails`, `hard_deletes` left at `ignore` (the "
        "cheapest setting; exigo-sync records deletions). Its tables were first filled by a "
        "`dbt snapshot` of the initial source; each measured run is a `dbt snapshot` after the "
        "same activity as the batch (same simulator file). `faster` = snapshot wall / batch "
        "wall (flow run).\n"
    )
    w(
        header(
            "history",
            "changes",
            "n",
            "snapshot wall s",
            "snapshot models s",
            "dbt MB",
            "faster (wall)",
            "faster (dbt step)",
            "load",
        )
    )
    for h in hs:
        for k in ks:
            sn, bt = res.snapshot(h, k), res.batch(h, k)
            if sn is None:
                w(f"| {label(h)} | {label(k)} | not measured |||||||")
                continue
            w(
                f"| {label(h)} | {label(k)} | {sn['n']} | {_s(sn['wall_seconds'])} | "
                f"{_s(sn['model_seconds'])} | {_mb(sn['maxrss_mb'])} | "
                f"{_r(_ratio(sn['wall_seconds'], bt and bt['wall_seconds']))} | "
                f"{_r(_ratio(sn['wall_seconds'], bt and bt['dbt_step_seconds']))} | "
                f"{_loads(sn['runs'])} |"
            )
    w("")

    # --- 4. no-change ----------------------------------------------------------------------
    w(SECTIONS[5] + "\n")
    w(
        "A no-change batch: right after the initial load, nothing changed at the source; the "
        "window (default 10-minute overlap) re-delivers the rows of the last 10 minutes before "
        "the watermark, which change nothing. **Flow, running API**: one process runs the flow "
        "n + 1 times against the bench's Prefect server (as `serve` and deployments do); the "
        "first run of the process is shown apart, the median is over the n after it. **Cold "
        "CLI**: `exigo-sync run` as a new process each time, which starts its own private "
        "Prefect API. **Bare dbt build**: the same dbt command the flow runs (same selection, "
        "exclusions and vars), on a batch the ledger has `refreshed`, with dbt's partial "
        "parsing warm as the flow finds it.\n"
    )
    w(
        header(
            "history",
            "queue rows",
            "flow (running API) s",
            "first run in process s",
            "flow's dbt step s",
            "bare `dbt build` s",
            "flow / dbt build",
            "cold `exigo-sync run` s",
            "cold / dbt build",
            "dbt MB",
            "cold tree MB",
            "load",
        )
    )
    for h in hs:
        nc = res.get("nochange", f"h{label(h)}")
        if nc is None:
            w(f"| {label(h)} | not measured |||||||||||")
            continue
        fw, cc, bare = nc["flow_warm"], nc["cli_cold"], nc["bare_dbt"]
        w(
            f"| {label(h)} | {fw['queue_rows']:,} | {_s(fw['wall_seconds'])} (n={fw['n']}) | "
            f"{_s(fw['first_run']['wall_seconds'])} | {_s(fw['dbt_step_seconds'])} | "
            f"{_s(bare['wall_seconds'])} (n={bare['n']}) | "
            f"{_r(_ratio(fw['wall_seconds'], bare['wall_seconds']))} | "
            f"{_s(cc['wall_seconds'])} (n={cc['n']}) | "
            f"{_r(_ratio(cc['wall_seconds'], bare['wall_seconds']))} | "
            f"{_mb(fw['dbt_child_maxrss_mb'])} | {_mb(cc['tree_peak_mb'])} | "
            f"{_load(fw['runs'][0])} … {_load(bare['runs'][-1])} |"
        )
    w("")
    for h in hs:
        nc = res.get("nochange", f"h{label(h)}")
        if nc:
            steps = ", ".join(f"{k} {_s(val)} s" for k, val in nc["flow_warm"]["steps"].items())
            w(f"- {label(h)}: flow steps (median): {steps}")
    w("")

    # --- 5. initial load -------------------------------------------------------------------
    w(SECTIONS[6] + "\n")
    if il is None and landed is None:
        w("not measured\n")
    else:
        rows = (il or landed or {})["source_rows"]
        w(
            f"The first batch of a {label(sizes.initial_load_customers)}-customer source "
            f"({', '.join(f'{k} {v:,}' for k, v in rows.items())}), end to end: "
            f"`exigo-sync run` on a DuckDB warehouse (new process, private Prefect API, full "
            "load). Co-located: the warehouse copies the queue tables from the attached "
            "simulator file itself (the demo's topology). Landed: the flow streams them across "
            "from the source's driver, as from a sync database on another server (target "
            "`duckdb_local`, source output `simulator`, `EXIGO_SYNC_TOPOLOGY=landed`).\n"
        )
        w(
            header(
                "topology",
                "n",
                "wall s",
                "pinning the snapshot s",
                "peak RSS, process tree MB",
                "dbt child MB (polled)",
                "CLI process MB",
                "history rows",
                "warehouse MB",
                "load",
            )
        )
        for name, load in (("co-located", il), ("landed", landed)):
            if load is None:
                w(f"| {name} | not measured | | | | | | | | |")
                continue
            r0 = load["runs"][0]
            w(
                f"| {name} | {load['n']} | {_s(load['wall_seconds'])} | "
                f"{_s(r0.get('pinned_seconds'))} | {_mb(load['tree_peak_mb'])} | "
                f"{_mb(load['dbt_child_polled_mb'])} | {_mb(r0['maxrss_mb'])} | "
                f"{sum(r0['history_rows'].values()):,} | {_mb(r0['warehouse_mb'])} | "
                f"{_loads(load['runs'])} |"
            )
        w("")
        r0 = (il or landed or {})["runs"][0]
        w(
            "Slowest dbt nodes: "
            + ", ".join(f"{n[1].split('.')[-1]} {_s(n[0])} s" for n in r0["dbt"]["slowest"][:6])
            + "\n"
        )
    c = f"c{label(sizes.landing_customers)}"
    ways = {way: res.get("landing", c, way) for way in LANDING_WAYS}
    if any(ways.values()):
        w(
            "**The snapshot's copy alone** (`python -m bench.child landing`: "
            "`exigo_sync.warehouse.landing`, as the flow's `land` step calls it), from a "
            f"{label(sizes.landing_customers)}-customer source refreshed from the start of time "
            "into an empty warehouse: every table a batch lands (at 1M customers the slow way "
            "would take over half an hour; the landed initial load above is the fast way at "
            "1M). Landed, rows reach a DuckDB warehouse one of two ways: as Arrow record "
            "batches the source's driver builds (DuckDB here; `mssql-python` on SQL Server), or "
            "as row tuples converted column by column (a driver without Arrow fetch: `pyodbc`). "
            "Co-located, the warehouse copies the same tables itself from the attached file: "
            "DuckDB writing them, with no transfer at all.\n"
        )
        w(header("way", "n", "rows", "wall s", "rows/s", "process MB", "load"))
        names = {
            "arrow": "landed, Arrow record batches",
            "rows": "landed, row tuples",
            "colocated": "co-located copy",
        }
        for way, d in ways.items():
            if d is None:
                w(f"| {names[way]} | not measured | | | | | |")
                continue
            w(
                f"| {names[way]} | {d['n']} | {d['rows']:,} | {_s(d['wall_seconds'])} | "
                f"{d['rows_per_second']:,.0f} | {_mb(d['maxrss_mb'])} | {_loads(d['runs'])} |"
            )
        arrow, tuples, colocated = (ways[w_] for w_ in ("arrow", "rows", "colocated"))
        if arrow and tuples:
            w(
                f"\nArrow record batches land the same rows "
                f"{_r(_ratio(tuples['wall_seconds'], arrow['wall_seconds']))} as fast as row "
                "tuples"
                + (
                    f", and take {_r(_ratio(arrow['wall_seconds'], colocated['wall_seconds']))} "
                    "the time of the warehouse's own copy"
                    if colocated
                    else ""
                )
                + ".\n"
            )

    # --- 6. simulator ----------------------------------------------------------------------
    w(SECTIONS[7] + "\n")
    if sim is None:
        w("not measured\n")
    else:
        r0 = sim["runs"][0]
        w(
            f"`exigo_sync.simulator.bench`: create {label(sizes.simulator_customers)} customers "
            "(5 orders per customer), advance 3 simulated hours at the default rates scaled to "
            "the population, one `queue.Refresh`.\n"
        )
        w(
            header(
                "n",
                "create s",
                "advance s",
                "refresh s",
                "process wall s",
                "peak RSS MB",
                "file MB",
                "load",
            )
        )
        w(
            f"| {sim['n']} | {_s(sim['create_seconds'])} | {_s(sim['advance_seconds'])} | "
            f"{_s(sim['refresh_seconds'])} | {_s(sim['process_seconds'])} | "
            f"{_mb(sim['maxrss_mb'])} | "
            f"{_mb(r0['file_mb'])} | {_loads([x['process'] for x in sim['runs']])} |"
        )
        w("")
        w("dbo rows: " + ", ".join(f"{k} {v:,}" for k, v in r0["dbo_rows"].items()) + "\n")

    # --- profile ---------------------------------------------------------------------------
    w(SECTIONS[8] + "\n")
    prof = res.get("profile", f"h{label(hmax)}", f"k{label(kmax)}")
    merge_sql = None if prof is None else sum(e["seconds"] for e in prof["statements"])
    if prof is None:
        w("not measured\n")
    else:
        w(
            f"The {label(kmax)}-change batch into {label(hmax)} history, replayed statement by "
            "statement (`bench/profile.py`) on the warehouse as the merge models found it (the "
            "batch's staging built): each model's compiled select into its temp table "
            "(target/compiled), then dbt-duckdb's DELETE and INSERT (target/run), under "
            f"`EXPLAIN ANALYZE`. Load {_load(prof)}. Full plans: `bench/.work/explain/`.\n"
        )
        w("| model | statement | s | rows scanned | slowest operators (s, rows) |")
        w("| --- | --- | --- | --- | --- |")
        for e in prof["statements"]:
            ops = "; ".join(
                f"{o['name']}{' ' + o['table'].split('.')[-1] if o['table'] else ''} "
                f"{o['seconds']:.2f} ({o['rows_scanned'] or o['rows']:,})"
                for o in e["top_operators"][:3]
            )
            w(row(e["model"], e["statement"], f"{e['seconds']:.2f}", f"{e['rows_scanned']:,}", ops))
        total = merge_sql
        by: dict[str, float] = {}
        for e in prof["statements"]:
            by[e["statement"]] = by.get(e["statement"], 0.0) + e["seconds"]
        w("")
        w(f"Total {total:.2f} s: " + ", ".join(f"{k} {v:.2f} s" for k, v in by.items()) + "\n")
        fl, bt = res.floor(hmax, kmax), res.batch(hmax, kmax)
        if fl and bt:
            merge_floor = fl["history_seconds"] + fl["current_seconds"]
            w(
                f"The SQL of exigo-sync's merge models for this batch: {total:.2f} s; the floor's "
                f"history and current statements for the same batch: {merge_floor:.2f} s "
                f"({_r(_ratio(total, merge_floor))}). The history and current models took "
                f"{_s(bt['merge_model_seconds'])} s of the batch's dbt run phase: the rest is "
                "dbt's own work per model (compiling, introspecting columns, creating and "
                "dropping the temp table, committing), not the SQL.\n"
            )

    # --- bounds ----------------------------------------------------------------------------
    w(SECTIONS[9] + "\n")
    out.extend(bounds(res, sizes, merge_sql=merge_sql))

    # --- commands --------------------------------------------------------------------------
    w(SECTIONS[10] + "\n")
    w(
        "Everything: `make bench` (full sizes: about 70 minutes on 2 cores, about 60 GB of disk "
        "under `bench/.work/`; resumable) or "
        f"`make bench BENCH_SIZES={sizes.name}`. One figure again (its cached inputs are reused): "
        f"{_reproduce(sizes, '<figure>')}, where `<figure>` is one of:\n"
    )
    figs = [f"batch/h{label(h)}/k{label(k)}" for h in hs for k in ks]
    figs += [f"floor/h{label(h)}/k{label(k)}" for h in hs for k in ks]
    figs += [f"snapshot/h{label(h)}/k{label(k)}" for h in hs for k in ks]
    figs += [f"nochange/h{label(h)}" for h in hs]
    figs += [f"layers/h{label(min(hs))}"]
    figs += [
        f"profile/h{label(hmax)}/k{label(kmax)}",
        f"initial_load/c{label(sizes.initial_load_customers)}",
        *(f"landing/c{label(sizes.landing_customers)}/{way}" for way in LANDING_WAYS),
        f"initial_load_landed/c{label(sizes.initial_load_customers)}",
        f"simulator/c{label(sizes.simulator_customers)}",
    ]
    w(", ".join(f"`{x}`" for x in figs) + " (a prefix selects several).\n")
    w("What each figure runs:\n")
    w(
        "- `batch/…`: `python -m bench.child flow --overlap-minutes 0` (the flow, in-process, "
        "PREFECT_API_URL = the bench's server) on copies of `cache/h*/wh_loaded.duckdb` and "
        "`cache/h*/k*/sim_advanced.duckdb`."
    )
    w(
        "- `floor/…`: `python -m bench.child floor` on copies of `cache/h*/k*/wh_staged.duckdb` "
        "and `sim_advanced.duckdb` (only its `dbo` is read)."
    )
    some = next((res.snapshot(h, k) for h in hs for k in ks if res.snapshot(h, k)), None)
    if some:
        w(f"- `snapshot/…`: `{some['command']}`")
    nc = next(
        (res.get("nochange", f"h{label(h)}") for h in hs if res.get("nochange", f"h{label(h)}")),
        None,
    )
    if nc:
        w(
            f"- `nochange/…` bare dbt build: `{nc['bare_dbt']['command']}`; cold CLI: "
            "`exigo-sync run`; running API: `python -m bench.child flow --runs N`."
        )
    lay = res.get("layers", f"h{label(min(hs))}")
    if lay:
        w(
            "- `layers/…`: on the no-change batch of section 4, "
            + "; ".join(f"{name}: `{v['command']}`" for name, v in lay["variants"].items())
            + "."
        )
    w(
        "- `initial_load/…`: `exigo-sync run` (no PREFECT_API_URL) on a copy of the simulator "
        "of section 6; `initial_load_landed/…` the same with "
        + ", ".join(f"`{k}={v}`" for k, v in LANDED_ENV.items())
        + "."
    )
    w(
        "- `landing/…`: `python -m bench.child landing [--rows | --colocated]` on a copy of that "
        "simulator "
        "refreshed from the start of time (`cache/sims/c*-refreshed.duckdb`)."
    )
    if sim:
        w(f"- `simulator/…`: `{sim['command']}`")
    w("")
    w(
        "The environment of every exigo-sync process is the example profile "
        "(`profiles.example.yml`, target `duckdb`) with `EXIGO_SYNC_WAREHOUSE_PATH` / "
        "`EXIGO_SYNC_SOURCE_PATH` / `EXIGO_SYNC_DBT_TARGET_PATH` pointing into "
        "`bench/.work/slot/`.\n"
    )

    if ANALYSIS.is_file() and sizes.name == "full":
        w(ANALYSIS.read_text().rstrip() + "\n")
    return "\n".join(out)


def sections_present(text: str) -> list[str]:
    return [s for s in SECTIONS if s in text]


def missing_sections(path: Path) -> list[str]:
    text = path.read_text()
    return [s for s in SECTIONS if s not in text]
