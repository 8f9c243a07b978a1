"""The markdown report of one batch (published as a Prefect artifact)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exigo_sync.dbt_runner import DbtOutcome
from exigo_sync.source import RefreshResult
from exigo_sync.warehouse.ledger import Completeness, EntityStats
from exigo_sync.window import Window

SLOWEST_NODES = 10


@dataclass(frozen=True)
class BatchSummary:
    """What one merged batch did: the flow's return value and its report's content."""

    batch_id: int
    window: Window
    result: RefreshResult
    stats: Sequence[EntityStats]
    reconciled: bool
    completeness: Completeness
    outcome: DbtOutcome | None = None
    timings: dict[str, float] = field(default_factory=dict)
    docs_index: Path | None = None
    analytics_copy: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The flow run's result (JSON-friendly)."""
        return {
            "completeness": self.completeness.detail,
            "reconciled": self.reconciled,
            "batch_id": self.batch_id,
            "window_start": self.window.start.isoformat(),
            "window_kind": self.window.kind,
            "row_counts": dict(self.result.row_counts),
            "stats": [s.__dict__ for s in self.stats],
            "analytics_copy": self.analytics_copy,
        }

    def markdown(self) -> str:
        return batch_markdown(
            self.batch_id, self.window, self.result, self.stats, self.timings, self.outcome,
            self.completeness, self.docs_index, self.analytics_copy,
        )  # fmt: skip


def batch_markdown(
    batch_id: int,
    window: Window,
    result: RefreshResult,
    stats: Sequence[EntityStats],
    timings: dict[str, float],
    outcome: DbtOutcome | None = None,
    completeness: Completeness | None = None,
    docs_index: Path | None = None,
    analytics_copy: str | None = None,
) -> str:
    lines = [
        f"# exigo-sync batch {batch_id}",
        "",
        *([f"- warehouse: **{completeness.detail}**"] if completeness else []),
        *(
            [
                f"- analysts' catalogue: `{docs_index}` (`exigo-sync docs` rebuilds it, "
                "`exigo-sync docs --serve` serves it)"
            ]
            if docs_index
            else []
        ),
        *(
            [f"- analytics copy (read-only; open this one from BI tools): `{analytics_copy}`"]
            if analytics_copy
            else []
        ),
        f"- window: from **{window.start:%Y-%m-%d %H:%M:%S}** ({window.kind}) to "
        f"{result.refresh_started_at:%Y-%m-%d %H:%M:%S} (source clock)",
        f"- watermark before: {window.watermark or 'none'}",
        f"- queue.Refresh: {result.refresh_started_at} -> {result.refresh_finished_at}",
        "",
        "| queue table | rows |",
        "| --- | ---: |",
        *(f"| {table} | {n} |" for table, n in result.row_counts.items()),
        "",
        "| entity | inserted | changed | deleted | reopened | rejected | ties | live / at source |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {s.entity} | {s.inserted} | {s.changed} | {s.closed} | {s.reopened} | "
            f"{s.rejected} | {s.ties} | "
            + (f"{s.live_keys} / {s.source_keys}" if s.live_keys is not None else "not swept")
            + " |"
            for s in stats
        ),
        "",
        "| step | seconds |",
        "| --- | ---: |",
        *(f"| {step} | {secs:.1f} |" for step, secs in timings.items()),
    ]
    if outcome is not None and outcome.nodes:
        slowest = sorted(outcome.nodes, key=lambda n: -n.seconds)[:SLOWEST_NODES]
        counts: dict[str, int] = {}
        for n in outcome.nodes:
            counts[n.resource_type] = counts.get(n.resource_type, 0) + 1
        lines += [
            "",
            f"dbt invocation {outcome.invocation_id}: "
            + ", ".join(f"{n} {kind}s" for kind, n in sorted(counts.items()))
            + f" in {outcome.elapsed_seconds:.1f}s; slowest:",
            "",
            "| node | status | seconds |",
            "| --- | --- | ---: |",
            *(f"| {n.unique_id} | {n.status} | {n.seconds:.2f} |" for n in slowest),
        ]
    return "\n".join(lines) + "\n"


def describe_sweep(stats: Sequence[EntityStats]) -> str:
    """What the key sweep found, per swept entity: "payments 1 deleted, 0 reopened" ('' when
    no entity was swept). The flow's merged line and the CLI's last line both say it."""
    return "; ".join(
        f"{s.entity} {s.closed:,} deleted, {s.reopened:,} reopened"
        for s in stats
        if s.live_keys is not None
    )
