"""The markdown report of one batch (published as a Prefect artifact)."""

from __future__ import annotations

from collections.abc import Sequence

from exigo_sync.source import RefreshResult
from exigo_sync.warehouse.ledger import EntityStats
from exigo_sync.window import Window


def batch_markdown(
    batch_id: int,
    window: Window,
    result: RefreshResult,
    stats: Sequence[EntityStats],
    timings: dict[str, float],
) -> str:
    lines = [
        f"# exigo-sync batch {batch_id}",
        "",
        f"- window: from **{window.start:%Y-%m-%d %H:%M:%S}** ({window.kind}) to "
        f"{result.refresh_started_at:%Y-%m-%d %H:%M:%S} (source clock)",
        f"- watermark before: {window.watermark or 'none'}",
        f"- queue.Refresh: {result.refresh_started_at} -> {result.refresh_finished_at}",
        "",
        "| queue table | rows |",
        "| --- | ---: |",
        *(f"| {table} | {n} |" for table, n in result.row_counts.items()),
        "",
        "| entity | inserted | changed | closed | rejected | ties |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {s.entity} | {s.inserted} | {s.changed} | {s.closed} | {s.rejected} | {s.ties} |"
            for s in stats
        ),
        "",
        "| step | seconds |",
        "| --- | ---: |",
        *(f"| {step} | {secs:.1f} |" for step, secs in timings.items()),
    ]
    return "\n".join(lines) + "\n"
