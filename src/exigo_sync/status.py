"""`exigo-sync status`: the ledger and the lock as an operator wants to see them.

On a DuckDB warehouse a running batch holds the file, and opening it (even read-only) at the
wrong moment would make the batch's dbt fail. So status first reads the batch's live status file
(exigo_sync.warehouse.live_status): while it names a live run, status shows that run (batch,
step, lock holder) and the ledger as the analytics copy has it (the last merged state), and does
not touch the warehouse; otherwise it opens the warehouse read-only, for milliseconds.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from exigo_sync.profiles import Target
from exigo_sync.settings import Settings
from exigo_sync.topology import Topology
from exigo_sync.warehouse import analytics_copy, live_status
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
    if wh.type != "duckdb":
        with Ledger.open(wh, read_only=True) as ledger:
            _render(console, s, topology, ledger, last)
        return
    path = wh.warehouse_path()
    running = live_status.running_batch(wh, s.stale_after)
    if running is not None:
        console.print(escape(running.describe()), highlight=False)
        _render_from_copy(console, s, topology, last, why="a batch holds the warehouse file")
        return
    if not path.exists():
        console.print(f"no warehouse yet at {path}: run `exigo-sync run` first", highlight=False)
        return
    try:
        with Ledger.open(wh, read_only=True) as ledger:
            _render(console, s, topology, ledger, last)
    except WarehouseBusy as exc:
        # Not one of our batches (it would have said so): another DuckDB client has the file.
        console.print(f"{exc} (not an exigo-sync batch: another DuckDB client)", highlight=False)
        _render_from_copy(console, s, topology, last, why="the warehouse file is in use")


def _render_from_copy(
    console: Console, s: Settings, topology: Topology, last: int, *, why: str
) -> None:
    """The ledger as the analytics copy has it (the last merged batch's state); never the
    warehouse itself."""
    copy = analytics_copy.destination(topology.warehouse, s.analytics_copy_path)
    if copy is None or not copy.is_file():
        console.print(
            f"{why}; there is no analytics copy to read the ledger from "
            f"({copy or 'EXIGO_SYNC_ANALYTICS_COPY_PATH=off'}): try again when the batch ends",
            highlight=False,
        )
        return
    console.print(
        f"{why}: the ledger below is the analytics copy's ({copy}, the last merged batch)",
        highlight=False,
    )
    reader = Target("analytics copy", "duckdb", {"path": str(copy)})
    with Ledger.open(reader, read_only=True) as ledger:
        # The copy's lock row is the one the last batch held while it published the copy.
        _render(console, s, topology, ledger, last, lock_line=False)


def _render(
    console: Console,
    s: Settings,
    topology: Topology,
    ledger: Ledger,
    last: int,
    *,
    lock_line: bool = True,
) -> None:
    if not ledger.exists():
        console.print("no ledger yet: run `exigo-sync run` first")
        return
    batches = ledger.recent_batches(last)
    watermark = ledger.watermark()
    clocks = describe_clocks(ledger.watermark_detail())
    holder = read_holder(ledger, topology.lock_name(s.source_name)) if lock_line else None
    warehouse_now = ledger.now()
    completeness = ledger.completeness()
    reconciled = ledger.last_reconciliation()
    rejects = ledger.recent_rejects(last)
    if lock_line or topology.source.type != "duckdb":
        now = _source_clock(topology)
    else:  # a batch is running: the simulator file is its, not to be opened now
        now = "not read while a batch runs (the simulator file is in use)"
    death = holder.death(s.stale_after, warehouse_now) if holder else None

    table = Table(title=f"exigo-sync batches ({topology.describe()})")
    for col in ("batch", "status", "window", "from", "refresh at", "queue rows", "UTC start",
                "secs", "error"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for b in batches:
        rows = sum(b[c] or 0 for c in ROW_COLUMNS.values())
        secs = (b["finished_at"] - b["started_at"]).total_seconds() if b["finished_at"] else None
        status = b["status"]
        if status in IN_FLIGHT and lock_line and (holder is None or death is not None):
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
    if lock_line:
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
