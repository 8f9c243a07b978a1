"""What one dbt invocation spent, from its run_results.json."""

from __future__ import annotations

import json
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


def summarize(path: Path, top: int = 8) -> dict[str, Any]:
    """Seconds per layer (models) and for tests, dbt's elapsed time, the slowest nodes."""
    data = json.loads(path.read_text())
    by_layer: dict[str, float] = {}
    nodes = []
    for r in data.get("results") or []:
        seconds = float(r.get("execution_time") or 0.0)
        uid = str(r["unique_id"])
        by_layer[layer(uid)] = by_layer.get(layer(uid), 0.0) + seconds
        nodes.append((seconds, uid, str(r.get("status"))))
    nodes.sort(reverse=True)
    model_seconds = sum(v for k, v in by_layer.items() if k not in ("tests", "unit_test"))
    return {
        "dbt_elapsed": round(float(data.get("elapsed_time") or 0.0), 3),
        "model_seconds": round(model_seconds, 3),
        "by_layer": {k: round(v, 3) for k, v in sorted(by_layer.items())},
        "nodes": len(nodes),
        "slowest": [[round(s, 3), uid] for s, uid, _ in nodes[:top]],
        "statuses": sorted({status for _, _, status in nodes}),
    }
