"""`make demo`: a simulated sync DB, several cycles of activity + sync, a summary, a query.

Runs on Prefect's ephemeral API (no server needed). The warehouse file stays for exploring.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from exigo_sync.settings import REPO_ROOT

CLOCK_START = datetime(2026, 1, 5)

# "Orders as they were on date X": the version of each order valid at that instant.
AS_OF_QUERY = """
SELECT order_status_id, count(*) AS orders, sum(total) AS total
FROM exigo_history.orders_history
WHERE valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) AND NOT is_deleted
GROUP BY order_status_id ORDER BY order_status_id
"""


def configure(data_dir: Path) -> dict[str, str]:
    """Point the dbt profile (the example one, copied) at the demo files via env vars."""
    data_dir.mkdir(parents=True, exist_ok=True)
    profiles = data_dir / "profiles"
    profiles.mkdir(exist_ok=True)
    shutil.copyfile(REPO_ROOT / "profiles.example.yml", profiles / "profiles.yml")
    env = {
        "EXIGO_SYNC_PROFILES_DIR": str(profiles.resolve()),
        "EXIGO_SYNC_TARGET": "duckdb",
        "EXIGO_SYNC_SOURCE_PATH": str((data_dir / "exigo_source.duckdb").resolve()),
        "EXIGO_SYNC_WAREHOUSE_PATH": str((data_dir / "warehouse.duckdb").resolve()),
    }
    os.environ.update(env)
    return env


def run_demo(
    console: Console, *, customers: int, cycles: int, hours: float, data_dir: Path
) -> None:
    from exigo_sync.prefect_api import prefect_api

    # One Prefect API for every batch of the demo: starting one costs seconds.
    with prefect_api():
        _run_demo(console, customers=customers, cycles=cycles, hours=hours, data_dir=data_dir)


def _run_demo(
    console: Console, *, customers: int, cycles: int, hours: float, data_dir: Path
) -> None:
    from exigo_sync.cli import console_handlers, run_flow
    from exigo_sync.simulator import SyncSimulator

    env = configure(data_dir)
    source, warehouse = Path(env["EXIGO_SYNC_SOURCE_PATH"]), Path(env["EXIGO_SYNC_WAREHOUSE_PATH"])
    for f in (source, warehouse):  # a demo starts from nothing
        f.unlink(missing_ok=True)
        Path(str(f) + ".wal").unlink(missing_ok=True)
    # The flow's own logs (one task per dbt node) would drown the story: warnings only.
    for handler in console_handlers():
        handler.setLevel(logging.WARNING)

    console.rule("exigo-sync demo")
    console.print(f"creating a simulated Exigo sync DB with {customers:,} customers in {source}")
    sim = SyncSimulator.create(source, seed=42, customers=customers, clock_start=CLOCK_START)
    summary = Table(title="batches")
    for col in (
        "batch",
        "source clock",
        "window from",
        "queue rows",
        "inserted",
        "changed",
        "closed",
        "rejected",
    ):
        summary.add_column(col, justify="right")
    for cycle in range(cycles + 1):
        if cycle:
            sim.advance(timedelta(hours=hours))
        out = run_flow()
        st = out["stats"]
        summary.add_row(
            str(out["batch_id"]),
            f"{sim.now():%m-%d %H:%M}",
            out["window_start"][5:16].replace("T", " "),
            f"{sum(out['row_counts'].values()):,}",
            *(f"{sum(s[k] for s in st):,}" for k in ("inserted", "changed", "closed", "rejected")),
        )
        console.print(f"batch {out['batch_id']} merged (source clock {sim.now():%Y-%m-%d %H:%M})")
    console.print(summary)

    as_of = CLOCK_START + timedelta(hours=hours * max(cycles, 1) / 2)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(AS_OF_QUERY, [as_of, as_of]).fetchall()
    finally:
        con.close()
    q = Table(title=f"orders as they were on {as_of:%Y-%m-%d %H:%M} (exigo_history.orders_history)")
    for col in ("order_status_id", "orders", "total"):
        q.add_column(col, justify="right")
    for r in rows:
        q.add_row(*(str(v) for v in r))
    console.print(q)
    console.print("query:" + AS_OF_QUERY.replace("?", f"'{as_of:%Y-%m-%d %H:%M}'"))
    console.print(
        f"warehouse kept at {warehouse}; explore with: duckdb {warehouse}  "
        f"(or EXIGO_SYNC_PROFILES_DIR={env['EXIGO_SYNC_PROFILES_DIR']} exigo-sync status)"
    )
