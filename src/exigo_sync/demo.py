"""`make demo`: a simulated sync DB, several cycles of activity + sync, a summary, a query.

Runs on Prefect's ephemeral API (no server needed). The warehouse file stays for exploring.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from exigo_sync.catalog import REPLICATED_ENTITY_NAMES
from exigo_sync.naming import entity_name
from exigo_sync.paths import example_profile
from exigo_sync.profiles import Target
from exigo_sync.warehouse.analytics_copy import default_path
from exigo_sync.warehouse.ledger import Ledger

CLOCK_START = datetime(2026, 1, 5)

# "Orders as they were at an instant, by status name": the derived table is what the dbt macro
# exigo_as_of('orders', <instant>) compiles to on DuckDB (tests/dbt/test_marts.py holds them
# equal), the names come from the order statuses lookup as it is now.
AS_OF_QUERY = """
select s.order_status_description as order_status, count(*) as orders, sum(o.total) as total
from (select as_of_version.* from exigo_history.orders_history as_of_version
      where as_of_version.valid_from <= ?
        and (as_of_version.valid_to is null or as_of_version.valid_to > ?)
        and as_of_version.is_deleted = false) o
left join exigo_current.order_statuses_current s on s.order_status_id = o.order_status_id
group by o.order_status_id, s.order_status_description
order by o.order_status_id
"""


# The example profile's defaults for the two DuckDB files (relative: under the profile's folder).
EXAMPLE_DEFAULTS = {
    "EXIGO_SYNC_SOURCE_PATH": "data/exigo_source.duckdb",
    "EXIGO_SYNC_WAREHOUSE_PATH": "data/warehouse.duckdb",
}


def configure(data_dir: Path) -> dict[str, str]:
    """The demo's dbt profile: the example one, copied to <data_dir>/profiles/profiles.yml with
    the demo's files (absolute) as the defaults of its two DuckDB paths, so that the profile
    alone (EXIGO_SYNC_PROFILES_DIR) names them from any directory; the variables still override
    them, as in the example."""
    data_dir = data_dir.expanduser().resolve()
    profiles = data_dir / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    env = {
        "EXIGO_SYNC_PROFILES_DIR": str(profiles),
        "EXIGO_SYNC_TARGET": "duckdb",
        "EXIGO_SYNC_SOURCE_PATH": str(data_dir / "exigo_source.duckdb"),
        "EXIGO_SYNC_WAREHOUSE_PATH": str(data_dir / "warehouse.duckdb"),
    }
    text = example_profile().read_text()
    for variable, default in EXAMPLE_DEFAULTS.items():
        written = f"env_var('{variable}', '{default}')"
        if written not in text:
            raise RuntimeError(f"{example_profile()} no longer reads {written}")
        text = text.replace(written, f"env_var('{variable}', '{env[variable]}')")
    (profiles / "profiles.yml").write_text(text)
    os.environ.update(env)
    return env


def run_demo(
    console: Console, *, customers: int, cycles: int, hours: float, data_dir: Path
) -> None:
    from exigo_sync.prefect_api import prefect_api

    # One Prefect API for every batch of the demo: starting one costs seconds.
    with prefect_api(announce=lambda line: console.print(line, highlight=False)):
        _run_demo(console, customers=customers, cycles=cycles, hours=hours, data_dir=data_dir)


def _run_demo(
    console: Console, *, customers: int, cycles: int, hours: float, data_dir: Path
) -> None:
    from exigo_sync.runner import console_handlers, run_flow
    from exigo_sync.simulator import SyncSimulator

    env = configure(data_dir)
    source, warehouse = Path(env["EXIGO_SYNC_SOURCE_PATH"]), Path(env["EXIGO_SYNC_WAREHOUSE_PATH"])
    replaced = [f for f in (source, warehouse, default_path(warehouse)) if f.exists()]
    if replaced:  # a demo starts from nothing: say what it replaces
        console.print(
            "replacing the previous demo's files: " + ", ".join(str(f) for f in replaced),
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    for f in (source, warehouse, default_path(warehouse)):
        f.unlink(missing_ok=True)
        Path(str(f) + ".wal").unlink(missing_ok=True)
    # The flow's own logs (every step, dbt's node lines) would drown the story: warnings only.
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
        "deleted",
        "rejected",
    ):
        summary.add_column(col, justify="right")
    batch_ids: list[int] = []
    readable = warehouse
    for cycle in range(cycles + 1):
        if cycle:
            sim.advance(timedelta(hours=hours))
        out = run_flow()
        batch_ids.append(out["batch_id"])
        readable = Path(out["analytics_copy"] or warehouse)
        st = out["stats"]
        summary.add_row(
            str(out["batch_id"]),
            f"{sim.now():%m-%d %H:%M}",
            window_from(out),
            f"{sum(out['row_counts'].values()):,}",
            *(f"{sum(s[k] for s in st):,}" for k in ("inserted", "changed", "closed", "rejected")),
        )
        console.print(f"batch {out['batch_id']} merged (source clock {sim.now():%Y-%m-%d %H:%M})")
    console.print(summary)

    # Everything below reads the analytics copy, as an analyst's tool would: the next batch
    # could run meanwhile and would not wait for it.
    as_of = CLOCK_START + timedelta(hours=hours * max(cycles, 1) / 2)
    span = [min(batch_ids), max(batch_ids)]
    # What the demo's batches did to each entity: the ledger of the copy.
    copy = Target("analytics copy", "duckdb", {"path": str(readable)})
    with Ledger.open(copy, read_only=True) as ledger:
        per_entity = ledger.entity_stats(*span)
        queue_rows = ledger.queue_rows(*span)
    con = duckdb.connect(str(readable), read_only=True)
    try:
        rows = con.execute(AS_OF_QUERY, [as_of, as_of]).fetchall()
    finally:
        con.close()
    console.print(_entity_table(span, per_entity, queue_rows))

    q = Table(title=f"orders as they were on {as_of:%Y-%m-%d %H:%M}, by status")
    for col in ("order status", "orders", "total"):
        q.add_column(col, justify="right")
    for status, orders, total in rows:
        q.add_row(str(status), f"{orders:,}", f"{total:,.2f}")
    console.print(q)
    console.print("query:" + AS_OF_QUERY.replace("?", f"'{as_of:%Y-%m-%d %H:%M}'"))
    console.print(
        "in a dbt model: select ... from {{ exigo_as_of('orders', "
        f"'{as_of:%Y-%m-%d %H:%M}') }}}} o  (docs: {command('exigo-sync')} docs)"
    )
    console.print(
        f"warehouse kept at {warehouse}; analysts read the copy {readable}: "
        f"{read_copy_command(readable)}; the batches: "
        f"EXIGO_SYNC_PROFILES_DIR={env['EXIGO_SYNC_PROFILES_DIR']} {command('exigo-sync')} status",
        highlight=False,
        soft_wrap=True,
    )


def window_from(out: dict) -> str:
    """The batches table's "window from": "full load" for a full load (it starts in 1753)."""
    if out["window_kind"] == "full":
        return "full load"
    return str(out["window_start"])[5:16].replace("T", " ")


def command(name: str) -> str:
    """How to run one of this environment's commands from any shell: its name when it is on
    PATH, else its full path (a venv not activated: `make demo` runs .venv/bin/exigo-sync)."""
    import shutil
    import sys

    if shutil.which(name):
        return name
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def read_copy_command(copy: Path) -> str:
    """A command that opens the analytics copy read-only: DuckDB's own shell when installed,
    else this environment's Python with the duckdb package exigo-sync runs on."""
    import shlex
    import shutil
    import sys

    if shutil.which("duckdb"):
        return f"duckdb -readonly {shlex.quote(str(copy))}"
    code = (
        f"import duckdb; con = duckdb.connect({str(copy)!r}, read_only=True); "
        "print(con.sql('select batch_id, status, window_kind, started_at, finished_at "
        "from exigo_sync.batches order by batch_id'))"
    )
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _entity_table(
    span: list[int], per_entity: dict[str, dict[str, int]], queue_rows: dict[str, int]
) -> Table:
    table = Table(
        title=f"per entity, batches {span[0]}-{span[1]} (exigo_sync.batch_entity_stats)",
        caption="inserted: a key's first version; deleted: deletion versions; reopened keys (back "
        "after a deletion) count in changed too",
    )
    for col in ("entity", "queue rows", "inserted", "changed", "deleted", "reopened", "rejected"):
        table.add_column(col, justify="left" if col == "entity" else "right", no_wrap=True)
    rows_by_entity = {entity_name(t): n for t, n in queue_rows.items()}
    for entity in REPLICATED_ENTITY_NAMES:
        counts = per_entity.get(entity, {})
        table.add_row(
            entity,
            f"{rows_by_entity.get(entity) or 0:,}",
            *(
                f"{counts.get(name, 0):,}"
                for name in ("inserted", "changed", "closed", "reopened", "rejected")
            ),
        )
    return table
