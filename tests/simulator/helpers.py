"""Helpers for the simulator tests: the small database's settings, activity rates that make every
kind of change (or none) happen, and readers of the dbo tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator import ActivityRates, SyncSimulator
from exigo_sync.simulator.rates import PER_HOUR_RATES

CLOCK_START = datetime(2026, 1, 5)
SEED = 7
CUSTOMERS = 300

# Enough of every kind that a few simulated hours show each of them (the physical deletions,
# rare by default, at one of each per hour).
BUSY = ActivityRates(
    decline_fraction=0.15,
    cancel_fraction=0.15,
    customer_purges=0.2,
    order_deletes=0.2,
    account_deletes=0.2,
    site_deletes=0.2,
).scaled(5.0)
# Nothing happens except time-driven order progression, which is pushed beyond any test window.
QUIET = ActivityRates(
    **{name: 0.0 for name in PER_HOUR_RATES},
    accept_after_minutes=(1e6, 1e6),
    print_after_hours=(1e6, 1e6),
    ship_after_hours=(1e6, 1e6),
)
# Physical deletions only, one of each kind per hour.
DELETIONS_ONLY = replace(
    QUIET,
    customer_purges=1.0,
    order_deletes=1.0,
    account_deletes=1.0,
    site_deletes=1.0,
    payment_deletes=1.0,
)

Snapshot = dict[str, dict[Any, dict[str, Any]]]


def keys(rows: list[dict], *key: str) -> set:
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]] for r in rows}


def snapshot(sim: SyncSimulator) -> Snapshot:
    """Every dbo row now, per table, by key (a value, or a tuple for OrderDetails)."""
    out: Snapshot = {}
    for name, table in REPLICATED_TABLES.items():
        k = table.key
        out[name] = {
            (r[k[0]] if len(k) == 1 else tuple(r[c] for c in k)): r for r in sim.current_rows(name)
        }
    return out


def full_snapshot(sim: SyncSimulator) -> dict[str, list[dict]]:
    """Every dbo row and every bookkeeping table of the simulator (deletion archives, people,
    settings but the timing one): two files are the same database when these are equal."""
    tables = {name: sim.current_rows(name) for name in REPLICATED_TABLES}
    with sim.connect() as con:
        archives = [f"sim.Deleted{name}" for name in REPLICATED_TABLES]
        for extra in (*archives, "sim.RemovedOrderLines", "sim.People", "sim.Settings"):
            tables[extra] = con.execute(f"SELECT * FROM {extra} ORDER BY ALL").fetchall()
    tables["sim.Settings"] = [r for r in tables["sim.Settings"] if r[0] != "create_seconds"]
    return tables
