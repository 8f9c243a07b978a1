"""`exigo-sync status`: the ledger and the lock as an operator wants to see them."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from exigo_sync.settings import Settings
from exigo_sync.topology import Topology
from exigo_sync.warehouse.errors import WarehouseBusy
from exigo_sync.warehouse.ledger import Ledger
from exigo_sync.warehouse.ledger_sql import ROW_COLUMNS
from exigo_sync.warehouse.lock import Holder, read_holder
from exigo_sync.window import describe_clocks

IN_FLIGHT = ("refreshing", "refreshed")


def _source_clock(topology: Topology) -> Any:
    try:
        client = topology.source_client()
        try:
            return client.source_clock()
        finally:
            client.close()
    except Exception as exc:  # status must work while the source is down
        return f"unknown ({type(exc).__name__})"


def render_status(console: Console, *, target: str | None, last: int) -> None:
    s = Settings.load()
    topology = s.topology_for(target)
    wh = topology.warehouse
    if wh.type == "duckdb" and not wh.warehouse_path().exists():
        console.print(f"no warehouse yet at {wh.warehouse_path()}: run `exigo-sync run` first")
        return
    try:
        with Ledger.open(wh, read_only=True) as ledger:
            if not ledger.exists():
                console.print("no ledger yet: run `exigo-sync run` first")
                return
            batches = ledger.recent_batches(last)
            watermark = ledger.watermark()
            clocks = describe_clocks(ledger.watermark_detail())
            holder = read_holder(ledger, topology.lock_name(s.source_name))
            warehouse_now = ledger.now()
            completeness = ledger.completeness()
            reconciled = ledger.last_reconciliation()
            rejects = ledger.recent_rejects(last)
    except WarehouseBusy as exc:
        console.print(f"{exc}: a batch is probably running; try again when it has finished")
        return
    now = _source_clock(topology)
    death = holder.death(s.stale_after, warehouse_now) if holder else None

    table = Table(title=f"exigo-sync batches ({topology.describe()})")
    for col in ("batch", "status", "window", "from", "refresh at", "queue rows", "UTC start",
                "secs", "error"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for b in batches:
        rows = sum(b[c] or 0 for c in ROW_COLUMNS.values())
        secs = (b["finished_at"] - b["started_at"]).total_seconds() if b["finished_at"] else None
        status = b["status"]
        if status in IN_FLIGHT and (holder is None or death is not None):
            # Its run is gone: the next run marks it failed ("abandoned") and redoes the window.
            status = f"[red]{status}: run gone, abandoned[/red]"
        else:
            style = {"merged": "green", "failed": "red"}.get(status, "yellow")
            status = f"[{style}]{status}[/{style}]"
        table.add_row(
            str(b["batch_id"]),
            status,
            b["window_kind"] or "",
            f"{b['requested_start']:%Y-%m-%d %H:%M}" if b["requested_start"] else "",
            f"{b['refresh_started_at']:%Y-%m-%d %H:%M}" if b["refresh_started_at"] else "",
            str(rows),
            f"{b['started_at']:%Y-%m-%d %H:%M:%S}",
            f"{secs:.0f}" if secs is not None else "",
            (b["error"] or "")[:120],
        )
    console.print(table)
    console.print(f"lock: {_describe_lock(holder, death)}")
    console.print(f"warehouse: {completeness.detail}")
    if reconciled:
        first = reconciled[0]
        merged = f"{first['finished_at']:%Y-%m-%d %H:%M}"
        console.print(
            f"last reconciliation: batch {first['batch_id']} (merged {merged} UTC): "
            + "; ".join(
                f"{r['entity']} {r['deleted']} deleted, {r['reopened']} reopened"
                + (
                    f" ({r['live_keys']} live / {r['source_keys']} at source)"
                    if r["live_keys"] is not None
                    else ""
                )
                for r in reconciled
            )
        )
    else:
        console.print(
            "last reconciliation: never (`exigo-sync run --reconcile`, or the nightly "
            "deployment exigo-sync-reconcile)"
        )
    console.print(f"watermark (source clock): {watermark or 'none: no merged batch yet'}")
    console.print(f"clocks (W1): {clocks}")
    console.print(f"source clock now: {now}")
    if watermark is not None and not isinstance(now, str):
        console.print(f"lag behind the source: {now - watermark}")
    if rejects:
        console.print("rejected rows (last batches): " + ", ".join(f"{e} {n}" for e, n in rejects))
    else:
        console.print("rejected rows (last batches): none")


def _describe_lock(holder: Holder | None, death: str | None) -> str:
    if holder is None:
        return "free"
    if death is None:
        return f"held by {holder.describe()} (alive)"
    return (
        f"[red]held by a dead run[/red]: {holder.describe()}: {death}; the next run takes it "
        "over by itself (nothing to do)"
    )
