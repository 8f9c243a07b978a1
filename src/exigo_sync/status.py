"""`exigo-sync status`: the ledger as an operator wants to see it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from exigo_sync.profiles import Target, load_target
from exigo_sync.settings import Settings
from exigo_sync.warehouse import ledger
from exigo_sync.warehouse.ledger_sql import ROW_COLUMNS


def _source_clock(tgt: Target) -> str | object:
    try:
        client = tgt.source_client()
        try:
            return client.source_clock()
        finally:
            client.close()
    except Exception as exc:  # status must work while the source is down
        return f"unknown ({type(exc).__name__})"


def render_status(console: Console, *, target: str | None, last: int) -> None:
    s = Settings()
    tgt = load_target(s.profiles_dir, s.profile, target or s.target)
    if tgt.type == "duckdb" and not tgt.warehouse_path().exists():
        console.print(f"no warehouse yet at {tgt.warehouse_path()}: run `exigo-sync run` first")
        return
    batches = ledger.recent_batches(tgt, last)
    watermark = ledger.watermark(tgt)
    now = _source_clock(tgt)

    table = Table(title=f"exigo-sync batches (target {tgt.name})")
    for col in (
        "batch",
        "status",
        "window",
        "from",
        "refresh at",
        "queue rows",
        "UTC start",
        "secs",
        "error",
    ):
        table.add_column(col, overflow="fold")
    for b in batches:
        rows = sum(b[c] or 0 for c in ROW_COLUMNS.values())
        secs = (b["finished_at"] - b["started_at"]).total_seconds() if b["finished_at"] else None
        style = {"merged": "green", "failed": "red"}.get(b["status"], "yellow")
        table.add_row(
            str(b["batch_id"]),
            f"[{style}]{b['status']}[/{style}]",
            b["window_kind"] or "",
            f"{b['requested_start']:%Y-%m-%d %H:%M}" if b["requested_start"] else "",
            f"{b['refresh_started_at']:%Y-%m-%d %H:%M}" if b["refresh_started_at"] else "",
            str(rows),
            f"{b['started_at']:%Y-%m-%d %H:%M:%S}",
            f"{secs:.0f}" if secs is not None else "",
            (b["error"] or "")[:120],
        )
    console.print(table)
    console.print(f"watermark (source clock): {watermark or 'none: no merged batch yet'}")
    console.print(f"source clock now: {now}")
    if watermark is not None and not isinstance(now, str):
        console.print(f"lag behind the source: {now - watermark}")
    rejects = ledger.recent_rejects(tgt, last)
    if rejects:
        console.print("rejected rows (last batches): " + ", ".join(f"{e} {n}" for e, n in rejects))
    else:
        console.print("rejected rows (last batches): none")
