"""What a benchmark run measures: the size presets (`--sizes tiny|small|full`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

# Every simulator the benchmark creates has 5 orders per customer (the 1M-customer source:
# ~5M orders, ~10M lines). A full load of such a simulator gives ~21.7 history rows per customer
# over the six entities (measured: 46,000 customers -> 998,319 rows); history sizes are reached
# with that many customers, and the report gives the rows actually loaded.
ORDERS_PER_CUSTOMER = 5.0
HISTORY_ROWS_PER_CUSTOMER = 21.7
SEED = 42


@dataclass(frozen=True)
class Sizes:
    name: str
    history_rows: tuple[int, ...]  # history sizes (rows over the six entities)
    batch_changes: tuple[int, ...]  # batch sizes (queue rows over the six tables)
    initial_load_customers: int  # section 5
    # Section 5's copy of the snapshot alone, each way: smaller than the initial load, because
    # the slow way (row tuples) would take over half an hour at 1M customers.
    landing_customers: int
    simulator_customers: int  # section 6
    runs: int = 3  # runs per figure when a run is under `long_run_seconds`
    long_runs: int = 1  # runs per figure otherwise
    long_run_seconds: float = 60.0
    cold_cli_runs: int = 3  # `exigo-sync run` runs in the no-change comparison

    def customers_for(self, history_rows: int) -> int:
        return max(50, round(history_rows / HISTORY_ROWS_PER_CUSTOMER))


PRESETS: dict[str, Sizes] = {
    # The smoke test (tests/bench): every section, at sizes that say nothing about performance.
    "tiny": Sizes(
        name="tiny",
        history_rows=(3_000,),
        batch_changes=(200,),
        initial_load_customers=300,
        landing_customers=300,
        simulator_customers=300,
        runs=1,
        cold_cli_runs=1,
    ),
    # Development: minutes, still two history sizes 10x apart and two batch sizes.
    "small": Sizes(
        name="small",
        history_rows=(10_000, 100_000),
        batch_changes=(100, 1_000),
        initial_load_customers=10_000,
        landing_customers=10_000,
        simulator_customers=10_000,
    ),
    # The sizes.
    "full": Sizes(
        name="full",
        history_rows=(100_000, 1_000_000, 10_000_000),
        batch_changes=(1_000, 10_000, 100_000),
        initial_load_customers=1_000_000,
        landing_customers=200_000,
        simulator_customers=1_000_000,
    ),
}


def parse_count(text: str) -> int:
    """'100k' -> 100000, '1M' -> 1000000, '2500' -> 2500."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise ValueError(f"not a count: {text!r} (e.g. 500, 10k, 1M)")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    return round(float(m.group(1)) * factor)


def label(n: int) -> str:
    """1000000 -> '1M', 100000 -> '100k', 2500 -> '2.5k', 300 -> '300'."""
    for factor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= factor:
            value = n / factor
            return f"{value:g}{suffix}"
    return str(n)


def resolve(
    name: str,
    *,
    history: str | None = None,
    batches: str | None = None,
    runs: int | None = None,
) -> Sizes:
    """A preset, with optional overrides (`--history 100k,1M`, `--batches 1k`, `--runs 5`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown sizes {name!r}: one of {', '.join(PRESETS)}")
    sizes = PRESETS[name]
    if history:
        sizes = replace(sizes, history_rows=tuple(parse_count(x) for x in history.split(",")))
    if batches:
        sizes = replace(sizes, batch_changes=tuple(parse_count(x) for x in batches.split(",")))
    if runs:
        sizes = replace(sizes, runs=runs)
    return sizes
