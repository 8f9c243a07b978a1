"""`exigo-sync simulate …`: create, advance, refresh and inspect a simulated sync database."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from exigo_sync.catalog import QUEUE_TABLES
from exigo_sync.dates import parse_source_datetime
from exigo_sync.simulator.activity import ActivityRates
from exigo_sync.simulator.clocks import ClockModel
from exigo_sync.simulator.core import SimulatorError, SyncSimulator

# Typer vendors click; its ClickException is what every usage error (unknown option, bad value,
# missing argument) derives from.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


class _OneLineErrors(TyperGroup):
    """Bad input gets one line on stderr and a non-zero exit: no usage box, no traceback."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _ClickException as exc:
            if _is_help_request(exc):
                raise
            raise _fail(_usage_message(exc), getattr(exc, "exit_code", 2)) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except _ClickException as exc:
            if _is_help_request(exc):
                raise
            raise _fail(_usage_message(exc), getattr(exc, "exit_code", 2)) from None
        except (SimulatorError, ValueError, OSError) as exc:
            raise _fail(str(exc), 1) from None
        except duckdb.Error as exc:
            raise _fail(str(exc).strip().splitlines()[0], 1) from None


def _is_help_request(exc: Exception) -> bool:
    # A bare `exigo-sync simulate` (no_args_is_help) raises this to print the help: let it.
    return type(exc).__name__ == "NoArgsIsHelpError"


def _usage_message(exc: Exception) -> str:
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return f"{message} (try --help)"


simulate_app = typer.Typer(
    cls=_OneLineErrors,
    help="A simulated Exigo sync database in a DuckDB file (stand-in for the real thing).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_console = Console()

PathArg = Annotated[Path, typer.Argument(help="The simulator's DuckDB file.")]


def _date(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_source_datetime(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


_OFFSET_HELP = (
    "Server clock (SYSDATETIME, what queue.Refresh records) = simulator clock + this many "
    "minutes, may be negative; ModifiedDate stays on the simulator clock. Default 0."
)
_ZONE_HELP = (
    "IANA zone west of UTC (e.g. America/Chicago): the simulator clock runs in UTC, the server "
    "clock and ModifiedDate show local wall time (a local-time source)."
)


def _zone(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() == "none" else value


@simulate_app.command()
def create(
    path: PathArg,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same data.")] = 42,
    customers: Annotated[int, typer.Option(min=1, help="Base population size.")] = 1000,
    orders_per_customer: Annotated[float, typer.Option(min=0.0)] = 3.0,
    clock_start: Annotated[
        str, typer.Option(help="Source clock after creation (YYYY-MM-DD, M/D/YYYY, ISO).")
    ] = "2026-01-05",
    history_days: Annotated[int, typer.Option(min=1, help="Base data spans these days.")] = 30,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
    server_clock_offset_minutes: Annotated[
        float, typer.Option(help=_OFFSET_HELP, show_default=False)
    ] = 0.0,
    local_time_zone: Annotated[str | None, typer.Option(help=_ZONE_HELP)] = None,
) -> None:
    """Create a sync database with a base population. --clock-start is the simulator's clock
    (UTC with --local-time-zone)."""
    start = _date(clock_start)
    sim = SyncSimulator.create(
        path,
        seed=seed,
        customers=customers,
        orders_per_customer=orders_per_customer,
        clock_start=start,
        history_days=history_days,
        overwrite=overwrite,
        server_clock_offset_minutes=server_clock_offset_minutes,
        local_time_zone=_zone(local_time_zone),
    )
    _console.print(f"created {path} (seed {seed}, server clock {sim.now():%Y-%m-%d %H:%M:%S})")
    _print_counts(sim)


@simulate_app.command()
def advance(
    path: PathArg,
    hours: Annotated[float, typer.Option(min=0.0, help="Simulated hours to add.")] = 0.0,
    minutes: Annotated[float, typer.Option(min=0.0, help="Simulated minutes to add.")] = 0.0,
    rate_scale: Annotated[float, typer.Option(min=0.0, help="Multiply every per-hour rate.")] = 1.0,
    new_customers: Annotated[float | None, typer.Option(min=0.0)] = None,
    profile_edits: Annotated[float | None, typer.Option(min=0.0)] = None,
    status_changes: Annotated[float | None, typer.Option(min=0.0)] = None,
    new_orders: Annotated[float | None, typer.Option(min=0.0)] = None,
    returns: Annotated[float | None, typer.Option(min=0.0)] = None,
    line_edits: Annotated[float | None, typer.Option(min=0.0)] = None,
    line_removals: Annotated[float | None, typer.Option(min=0.0)] = None,
    payment_deletes: Annotated[float | None, typer.Option(min=0.0)] = None,
    account_changes: Annotated[float | None, typer.Option(min=0.0)] = None,
    site_edits: Annotated[float | None, typer.Option(min=0.0)] = None,
    customer_purges: Annotated[
        float | None,
        typer.Option(min=0.0, help="Customer rows physically deleted (with account and site)."),
    ] = None,
    order_deletes: Annotated[
        float | None, typer.Option(min=0.0, help="Unpaid orders deleted with their lines.")
    ] = None,
    account_deletes: Annotated[float | None, typer.Option(min=0.0)] = None,
    site_deletes: Annotated[float | None, typer.Option(min=0.0)] = None,
    replication_lag_minutes: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Maximum replication lag: a change may land in dbo up to this many minutes "
            "after its ModifiedDate (so after a refresh that its ModifiedDate precedes).",
        ),
    ] = 0.0,
) -> None:
    """Generate source activity and move the simulated clock forward. Rates are per hour."""
    duration = timedelta(hours=hours, minutes=minutes)
    if duration <= timedelta(0):
        raise typer.BadParameter("give a positive --hours and/or --minutes")
    overrides = {
        "new_customers": new_customers,
        "profile_edits": profile_edits,
        "status_changes": status_changes,
        "new_orders": new_orders,
        "returns": returns,
        "line_edits": line_edits,
        "line_removals": line_removals,
        "payment_deletes": payment_deletes,
        "account_changes": account_changes,
        "site_edits": site_edits,
        "customer_purges": customer_purges,
        "order_deletes": order_deletes,
        "account_deletes": account_deletes,
        "site_deletes": site_deletes,
    }
    try:
        lag = timedelta(minutes=replication_lag_minutes)
    except OverflowError:
        raise typer.BadParameter(
            f"--replication-lag-minutes is too large: {replication_lag_minutes}"
        ) from None
    base = ActivityRates().scaled(rate_scale)
    rates = ActivityRates(
        **{
            **{f.name: getattr(base, f.name) for f in fields(ActivityRates)},
            **{k: v for k, v in overrides.items() if v is not None},
            "replication_lag": lag,
        }
    )
    sim = SyncSimulator(path)
    summary = sim.advance(duration, rates)
    table = Table(
        title="activity",
        caption=f"{summary.started_at:%Y-%m-%d %H:%M} → {summary.finished_at:%Y-%m-%d %H:%M}",
    )
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, n in summary.counts.items():
        table.add_row(kind, f"{n:,}")
    _console.print(table)


@simulate_app.command()
def refresh(
    path: PathArg,
    since: Annotated[
        str | None,
        typer.Option(help="Explicit start (exec queue.Refresh 'DATE'); default: vendor rule."),
    ] = None,
) -> None:
    """Run queue.Refresh and print the row count of every queue table."""
    start = _date(since)
    result = SyncSimulator(path).refresh(start)
    table = Table(
        title="queue.Refresh" + ("" if start is None else f" '{start:%Y-%m-%d %H:%M:%S}'"),
        caption=f"server clock {result.refresh_started_at:%Y-%m-%d %H:%M:%S}",
    )
    table.add_column("queue table")
    table.add_column("rows", justify="right")
    for name in QUEUE_TABLES:
        table.add_row(f"queue.{name}", f"{result.row_counts.get(name, 0):,}")
    _console.print(table)


@simulate_app.command()
def clock(
    path: PathArg,
    server_clock_offset_minutes: Annotated[
        float | None, typer.Option(help="Set the server clock offset (minutes, may be negative).")
    ] = None,
    local_time_zone: Annotated[
        str | None, typer.Option(help="Set the local time zone (IANA, west of UTC), or none.")
    ] = None,
) -> None:
    """Show the clock model and the clocks' readings; change the model when options are given
    (stamps already written stay as they are)."""
    sim = SyncSimulator(path)
    if server_clock_offset_minutes is not None or local_time_zone is not None:
        model = sim.clock_model()
        if local_time_zone is not None:
            model = replace(model, local_time_zone=_zone(local_time_zone))
        if server_clock_offset_minutes is not None:
            model = replace(model, server_clock_offset_minutes=server_clock_offset_minutes)
        sim.set_clock_model(model)
    _print_clock(sim)


def _print_clock(sim: SyncSimulator) -> None:
    model: ClockModel = sim.clock_model()
    table = Table(title="clocks", caption=model.describe())
    table.add_column("clock")
    table.add_column("reads", justify="right")
    for name, value in (
        ("server now (SYSDATETIME)", sim.now()),
        ("server UTC now (SYSUTCDATETIME)", sim.utc_now()),
        ("simulator time", sim.simulation_time()),
        ("ModifiedDate clock now", sim.data_now()),
    ):
        table.add_row(name, f"{value:%Y-%m-%d %H:%M:%S}")
    _console.print(table)


@simulate_app.command()
def counts(path: PathArg) -> None:
    """Row counts of the dbo and queue tables, deleted keys, the clock and the last refresh."""
    _print_counts(SyncSimulator(path))


TableArg = Annotated[
    str, typer.Argument(help=f"A replicated table: {', '.join(QUEUE_TABLES)}.", show_default=False)
]


@simulate_app.command("empty-table")
def empty_table(path: PathArg, table: TableArg) -> None:
    """Make dbo.TABLE read empty (a sync re-initialisation, a lost permission) until
    restore-table. Its rows are hidden, not deleted; activity goes on behind them."""
    n = SyncSimulator(path).empty_table(table)
    _console.print(f"dbo.{table} now reads empty ({n:,} rows hidden)")


@simulate_app.command("restore-table")
def restore_table(path: PathArg, table: TableArg) -> None:
    """Bring an emptied dbo.TABLE's rows back."""
    n = SyncSimulator(path).restore_table(table)
    _console.print(f"dbo.{table} restored ({n:,} rows)")


@simulate_app.command("restore-deleted")
def restore_deleted(
    path: PathArg,
    table: TableArg,
    count: Annotated[
        int | None, typer.Option(min=0, help="How many keys: those deleted longest ago.")
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(help="A key to restore (repeatable); OrderDetails: ORDERID:LINE."),
    ] = None,
) -> None:
    """Make physically deleted keys reappear with their old rows and old ModifiedDate (a
    re-initialisation or restore): queue.Refresh will not show them."""
    if (count is None) == (not key):
        raise typer.BadParameter("give either --count or --key")
    keys = [_parse_key(k) for k in key] if key else None
    restored = SyncSimulator(path).restore_deleted(table, count, keys=keys)
    shown = ", ".join(str(k) for k in restored[:20]) + (" ..." if len(restored) > 20 else "")
    _console.print(f"restored {len(restored):,} {table} key(s)" + (f": {shown}" if shown else ""))


def _parse_key(text: str) -> int | tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.split(":"))
    except ValueError:
        raise typer.BadParameter(f"not a key: {text!r} (integers, ORDERID:LINE)") from None
    return parts[0] if len(parts) == 1 else parts


@simulate_app.command()
def bench(
    customers: Annotated[int, typer.Option(min=1, help="Base population size.")] = 1_000_000,
    orders_per_customer: Annotated[float, typer.Option(min=0.0)] = 5.0,
    seed: Annotated[int, typer.Option(min=0)] = 42,
    advance_hours: Annotated[float, typer.Option(min=0.0, help="Then advance this long.")] = 3.0,
    rate_scale: Annotated[
        float | None,
        typer.Option(min=0.0, help="Multiply the default rates (default: customers / 1000)."),
    ] = None,
    path: Annotated[
        Path | None, typer.Option(help="Keep the database here (default: a temp dir).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Time creating, advancing and refreshing a database of a given size; peak RSS."""
    from exigo_sync.simulator.bench import as_json, format_result, run_bench

    result = run_bench(
        customers=customers,
        orders_per_customer=orders_per_customer,
        seed=seed,
        advance_hours=advance_hours,
        rate_scale=rate_scale,
        path=path,
        progress=None if json_output else lambda m: typer.echo(m, err=True),
    )
    typer.echo(as_json(result) if json_output else format_result(result))


def _print_counts(sim: SyncSimulator) -> None:
    dbo = sim.row_counts("dbo")
    queue = sim.row_counts("queue")
    last = sim.last_refresh_time()
    hidden = sim.emptied_tables()
    table = Table(
        title=f"server clock {sim.now():%Y-%m-%d %H:%M:%S}",
        caption="last queue.Refresh: " + ("never" if last is None else f"{last:%Y-%m-%d %H:%M:%S}"),
    )
    table.add_column("table")
    table.add_column("dbo rows", justify="right")
    table.add_column("queue rows", justify="right")
    table.add_column("deleted keys", justify="right")
    for name in QUEUE_TABLES:
        rows = f"{dbo[name]:,}" + (" (emptied)" if name in hidden else "")
        table.add_row(name, rows, f"{queue[name]:,}", f"{len(sim.deleted_keys(name)):,}")
    _console.print(table)
