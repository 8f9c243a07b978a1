"""What one dbt invocation spent, from its run_results.json."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any


def layer(unique_id: str) -> str:
    kind, _, rest = unique_id.partition(".")
    name = rest.split(".")[-1] if kind != "test" else rest
    if kind == "test":
        return "tests"
    if kind == "snapshot":
        return "snapshots"
    if kind != "model":
        return kind
    if name.startswith("stg_") or name in ("exigo_rejected_rows", "exigo_deletion_guard"):
        return "staging"
    for suffix in ("_history", "_current"):
        if name.endswith(suffix):
            return suffix[1:]
    return "marts"


def _epoch(stamp: object) -> float:
    """A run_results.json timestamp (ISO 8601, `Z` for UTC) in epoch seconds."""
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def _interval(result: dict[str, Any]) -> tuple[float, float] | None:
    """A node's span: from its first timing step's start to its last one's end (epoch s)."""
    stamps = [
        _epoch(t[k])
        for t in result.get("timing") or []
        for k in ("started_at", "completed_at")
        if t.get(k)
    ]
    return (min(stamps), max(stamps)) if stamps else None


def wall_shares(results: list[dict[str, Any]]) -> dict[str, float]:
    """The run phase's wall time per layer, with nodes running at once (dbt threads > 1)
    sharing each moment equally: the layers then add up to the time any node ran, where the sum
    of node times would count an overlapped second twice. With one thread: each layer's sum of
    node times."""
    spans = [(iv, layer(str(r["unique_id"]))) for r in results if (iv := _interval(r))]
    edges = sorted({t for (start, end), _ in spans for t in (start, end)})
    shares: dict[str, float] = {}
    for left, right in itertools.pairwise(edges):
        running = [name for (start, end), name in spans if start <= left and end >= right]
        for name in running:
            shares[name] = shares.get(name, 0.0) + (right - left) / len(running)
    return shares


def step_seconds(results: list[dict[str, Any]]) -> dict[str, float]:
    """Node-seconds per timing step dbt records ("compile": rendering the node's Jinja, with
    the queries its macros make; "execute": running its statements and dbt's around them),
    summed over the nodes: with threads > 1 they add up to more than the wall time."""
    steps: dict[str, float] = {}
    for r in results:
        for t in r.get("timing") or []:
            if t.get("started_at") and t.get("completed_at"):
                seconds = _epoch(t["completed_at"]) - _epoch(t["started_at"])
                steps[str(t["name"])] = steps.get(str(t["name"]), 0.0) + seconds
    return steps


def summarize(path: Path, top: int = 8) -> dict[str, Any]:
    """Wall seconds per layer (models) and for tests (`wall_shares`), node-seconds per timing
    step (`step_seconds`), dbt's elapsed time and threads, the slowest nodes."""
    data = json.loads(path.read_text())
    results = data.get("results") or []
    nodes = [
        (float(r.get("execution_time") or 0.0), str(r["unique_id"]), str(r.get("status")))
        for r in results
    ]
    nodes.sort(reverse=True)
    by_layer = wall_shares(results)
    model_seconds = sum(v for k, v in by_layer.items() if k not in ("tests", "unit_test"))
    return {
        "dbt_elapsed": round(float(data.get("elapsed_time") or 0.0), 3),
        "threads": len({r.get("thread_id") for r in results}),
        "model_seconds": round(model_seconds, 3),
        "by_layer": {k: round(v, 3) for k, v in sorted(by_layer.items())},
        "step_seconds": {k: round(v, 3) for k, v in sorted(step_seconds(results).items())},
        "nodes": len(nodes),
        "slowest": [[round(s, 3), uid] for s, uid, _ in nodes[:top]],
        "statuses": sorted({status for _, _, status in nodes}),
    }
