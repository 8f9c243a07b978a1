"""How long a simulated sync database of a given size takes to create, advance and refresh,
and how much memory that takes: `python -m exigo_sync.simulator.bench --customers 1000000`
or `exigo-sync simulate bench`.

Wall time depends on what else runs on the machine, so CPU time (user + system, every thread)
is reported too. Peak RSS is the process's high-water mark (`resource.getrusage`): DuckDB runs
in-process, so it includes everything DuckDB held.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from exigo_sync.simulator.core import SyncSimulator
from exigo_sync.simulator.rates import ActivityRates

T = TypeVar("T")

# ActivityRates' defaults suit ~1,000 customers; the benchmark scales them with the size.
RATES_BASE_CUSTOMERS = 1000


@dataclass
class Phase:
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float  # process high-water mark at the end of the phase


@dataclass
class BenchResult:
    customers: int
    orders_per_customer: float
    seed: int
    cpus: int
    load_average: tuple[float, float, float]
    file_mb: float = 0.0
    create: Phase | None = None
    dbo_rows: dict[str, int] = field(default_factory=dict)
    advance_hours: float = 0.0
    rate_scale: float = 0.0
    advance: Phase | None = None
    activity: dict[str, int] = field(default_factory=dict)
    refresh: Phase | None = None
    queue_rows: dict[str, int] = field(default_factory=dict)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Callable[[], T]) -> tuple[T, Phase]:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    out = fn()
    return out, Phase(
        wall_seconds=round(time.perf_counter() - wall, 2),
        cpu_seconds=round(_cpu_seconds() - cpu, 2),
        peak_rss_mb=_peak_rss_mb(),
    )


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        yield path
        return
    tmp = Path(tempfile.mkdtemp(prefix="exigo-sim-bench-"))
    try:
        yield tmp / "sync.duckdb"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_bench(
    *,
    customers: int,
    orders_per_customer: float = 5.0,
    seed: int = 42,
    advance_hours: float = 3.0,
    rate_scale: float | None = None,
    path: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    """Create a database of `customers` (overwriting `path`, or in a temporary directory
    removed afterwards), advance it `advance_hours` with the default rates times `rate_scale`
    (default: scaled to the population), then run one queue.Refresh (the first: 24 hours)."""
    say = progress or (lambda _: None)
    scale = rate_scale if rate_scale is not None else customers / RATES_BASE_CUSTOMERS
    result = BenchResult(
        customers=customers,
        orders_per_customer=orders_per_customer,
        seed=seed,
        cpus=os.cpu_count() or 0,
        load_average=os.getloadavg(),
        advance_hours=advance_hours,
        rate_scale=scale,
    )
    with _workdir(path) as db:
        say(f"creating {customers:,} customers in {db}")
        sim, result.create = _timed(
            lambda: SyncSimulator.create(
                db,
                seed=seed,
                customers=customers,
                orders_per_customer=orders_per_customer,
                overwrite=True,
            )
        )
        result.dbo_rows = sim.row_counts()
        result.file_mb = round(db.stat().st_size / 2**20, 1)
        if advance_hours > 0:
            say(f"advancing {advance_hours} h at {scale:g} x the default rates")
            summary, result.advance = _timed(
                lambda: sim.advance(timedelta(hours=advance_hours), ActivityRates().scaled(scale))
            )
            result.activity = dict(summary.counts)
        say("queue.Refresh")
        refreshed, result.refresh = _timed(sim.refresh)
        result.queue_rows = dict(refreshed.row_counts)
    return result


def format_result(result: BenchResult) -> str:
    """A short plain-text report."""
    lines = [
        f"simulator benchmark: {result.customers:,} customers, "
        f"{result.orders_per_customer:g} orders per customer, seed {result.seed}",
        f"machine: {result.cpus} CPUs, load average at start "
        + " ".join(f"{x:.2f}" for x in result.load_average),
    ]
    for name in ("create", "advance", "refresh"):
        phase: Phase | None = getattr(result, name)
        if phase is None:
            continue
        extra = ""
        if name == "advance":
            extra = f" ({result.advance_hours:g} h at {result.rate_scale:g} x default rates)"
        lines.append(
            f"{name:8} wall {phase.wall_seconds:8.2f} s   cpu {phase.cpu_seconds:8.2f} s   "
            f"peak RSS {phase.peak_rss_mb:8.1f} MB{extra}"
        )
    lines.append(f"file: {result.file_mb:,.1f} MB after create")
    lines.append("dbo rows:   " + ", ".join(f"{k} {v:,}" for k, v in result.dbo_rows.items()))
    if result.activity:
        busy = {k: v for k, v in result.activity.items() if v}
        lines.append("activity:   " + ", ".join(f"{k} {v:,}" for k, v in busy.items()))
    lines.append("queue rows: " + ", ".join(f"{k} {v:,}" for k, v in result.queue_rows.items()))
    return "\n".join(lines)


def as_json(result: BenchResult) -> str:
    data: dict[str, Any] = asdict(result)
    return json.dumps(data, sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--advance-hours", type=float, default=3.0)
    parser.add_argument("--rate-scale", type=float, default=None)
    parser.add_argument("--path", type=Path, default=None, help="keep the database here")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    result = run_bench(
        customers=args.customers,
        orders_per_customer=args.orders_per_customer,
        seed=args.seed,
        advance_hours=args.advance_hours,
        rate_scale=args.rate_scale,
        path=args.path,
        progress=None if args.json else lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(as_json(result) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
