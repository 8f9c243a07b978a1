"""exigo-sync command line: run | serve | status | demo | simulate."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from exigo_sync.simulator.cli import simulate_app

# Prefect's ephemeral API (no server configured) sends a telemetry heartbeat from inside this
# process, which collides with the flow's own writes to the ephemeral SQLite database and prints
# a "database is locked" traceback. An operator may still turn it on explicitly.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    name="exigo-sync",
    help="Keep an analytics warehouse in step with an Exigo Database Sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(simulate_app, name="simulate")


class _UntilPrefect(logging.StreamHandler):  # type: ignore[type-arg]
    """Warnings and errors on stderr until Prefect's logging is set up, which replaces it (it
    replaces root handlers whose class name starts with "_"). Being there first also keeps the
    tracker library dbt imports from installing a root handler of its own
    (`logging.basicConfig()`), which Prefect would take for the user's and keep, leaving its
    own console handler (and our filters on it) out."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)


@app.callback()
def _environment() -> None:
    """Keep an analytics warehouse in step with an Exigo Database Sync."""
    from exigo_sync.paths import default_prefect_environment

    # Before any command imports Prefect: one PREFECT_HOME for shell runs, `make demo` and
    # `serve` (the private API's database and the runs its UI shows), unless one is set.
    added = default_prefect_environment(os.environ)
    if "PREFECT_HOME" in added:
        Path(added["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.update(added)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(_UntilPrefect())


console = Console()
err = Console(stderr=True)
# Piped or logged output has no width to fit; rich's 80-column default would cut the demo's and
# status' tables into ellipses.
for _console in (console, err):
    if not _console.is_terminal:
        _console.width = max(_console.width, 120)


def _fail(exc: BaseException) -> None:
    # escape(): dbt/Prefect messages contain [brackets] that rich would read as markup.
    err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _stopped(exc: BaseException) -> None:
    """A run ended by a signal: one line, and the shell's exit code for that signal."""
    from exigo_sync.batch import describe_stop

    err.print(f"[red]error:[/red] {escape(describe_stop(exc))}", highlight=False)
    raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else 143)


@app.command()
def run(
    since: Annotated[
        str | None, typer.Option(help="Backfill/replay start (source clock, ISO).")
    ] = None,
    allow_gap: Annotated[bool, typer.Option(help="Accept a since after the watermark.")] = False,
    target: Annotated[str | None, typer.Option(help="dbt target (default: profile's).")] = None,
    overlap_minutes: Annotated[float | None, typer.Option(help="Window overlap override.")] = None,
    select: Annotated[str | None, typer.Option(help="dbt selector for the merge.")] = None,
    full: Annotated[
        bool, typer.Option(help="Load everything (W1): makes a partial warehouse complete.")
    ] = False,
    reconcile: Annotated[
        bool,
        typer.Option(
            help="Also reconcile every entity's keys with the source (deletions the "
            "queue cannot show) and run every data test on whole tables."
        ),
    ] = False,
    confirm_deletions: Annotated[
        list[str] | None,
        typer.Option(
            "--confirm-deletions",
            help="Entity whose mass deletion (H9 guard) is real; this run only. Repeatable.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Show every line (dbt's nodes, each table pinned), not one line per step.",
        ),
    ] = False,
) -> None:
    """Run one batch now: queue.Refresh + dbt merge."""
    from exigo_sync.runner import run_flow
    from exigo_sync.window import FULL_LOAD_START

    if full:
        since = since or FULL_LOAD_START.isoformat()
    if verbose:
        os.environ["EXIGO_SYNC_VERBOSE"] = "true"
    try:
        # Every setting, flag and the profile are checked before Prefect starts (it takes
        # seconds), as the flow checks its parameters.
        settings = _preflight(
            target, since=since, allow_gap=allow_gap, overlap_minutes=overlap_minutes
        )
        from exigo_sync.dbt_runner import warm_up

        # dbt imports in the fork server while the private Prefect API starts.
        warm_up(settings.topology_for(target).warehouse.type, target_path=settings.dbt_target_dir)
        out = run_flow(
            announce=_announce, since=since, target=target, allow_gap=allow_gap,
            overlap_minutes=overlap_minutes, dbt_select=select, reconcile=reconcile,
            confirm_deletions=confirm_deletions or None,
        )  # fmt: skip
    except Exception as exc:
        _fail(exc)
    except BaseException as exc:  # SIGTERM (Prefect's TerminationSignal) or Ctrl-C
        _stopped(exc)
    console.print(escape(merged_line(out)), highlight=False, soft_wrap=True)


def merged_line(out: dict[str, Any]) -> str:
    """The last line of a run: the batch, its window and rows, and for a reconciliation what
    it deleted and reopened per entity."""
    rows = sum(out["row_counts"].values())
    window = (
        "full load"  # from 1753-01-01: everything the source has
        if out["window_kind"] == "full"
        else f"window from {out['window_start']} ({out['window_kind']})"
    )
    line = (
        f"batch {out['batch_id']} merged: {window}, {rows:,} queue rows; "
        f"warehouse {out['completeness']}"
    )
    if out.get("reconciled"):
        from exigo_sync.report import describe_sweep
        from exigo_sync.warehouse.ledger import EntityStats

        found = describe_sweep([EntityStats(**s) for s in out["stats"]])
        line += f"; reconciliation: {found or 'no entity swept'}"
    return line


def _announce(message: str) -> None:
    err.print(escape(message), highlight=False)


def _preflight(
    target: str | None,
    *,
    since: str | None = None,
    allow_gap: bool = False,
    overlap_minutes: float | None = None,
) -> Any:
    """What a run refuses before anything starts: a bad EXIGO_SYNC_* value (named), a `since`
    or overlap the window rules refuse (W3), a profile or target that does not resolve, a
    simulator file that is not there. Returns the settings."""
    from exigo_sync.settings import Settings
    from exigo_sync.window import parse_since

    settings = Settings.load()
    parse_since(since, allow_gap=allow_gap)
    settings.overlap_for(overlap_minutes)
    settings.topology_for(target).require_source_file()
    return settings


def serve_deployments() -> list[Any]:
    """What `serve` runs, as prefect.yaml does: a batch on the settings' schedule, and the
    nightly reconciliation. One run at a time is the runner's own limit (`serve(limit=1)`),
    not a deployment concurrency limit: that one lives on the server, and a serve killed
    outright would leave it full for the next serve (R2 across everything: the run lock)."""
    from prefect.schedules import Cron

    from exigo_sync.flow import exigo_sync as flow
    from exigo_sync.settings import Settings

    s = Settings.load()
    return [
        flow.to_deployment(
            name="exigo-sync-local",
            schedule=Cron(s.schedule_cron, timezone=s.schedule_timezone),
        ),
        flow.to_deployment(
            name="exigo-sync-local-reconcile",
            schedule=Cron(s.reconcile_cron, timezone=s.schedule_timezone),
            parameters={"reconcile": True},
        ),
    ]


@app.command()
def serve(
    port: Annotated[
        int | None, typer.Option(help="Port of the local Prefect server (default: a free one).")
    ] = None,
) -> None:
    """Run the schedule here: a batch every EXIGO_SYNC_SCHEDULE_CRON and the nightly
    reconciliation. Without PREFECT_API_URL it starts a local Prefect server (with the UI and
    the scheduler) that stops with it."""
    from exigo_sync.dbt_runner import warm_up
    from exigo_sync.prefect_api import prefect_api

    try:
        settings = _preflight(None)
        # One fork server for every flow run this serve starts (each a process of its own):
        # their dbt processes are forked from it, dbt imported once for all of them.
        warm_up(
            settings.topology_for(None).warehouse.type, share=True,
            target_path=settings.dbt_target_dir,
        )  # fmt: skip
        with prefect_api(services=True, port=port, announce=_announce) as url:
            from prefect import serve as prefect_serve

            deployments = serve_deployments()
            for line in serve_banner(url, [d.name for d in deployments]):
                console.print(escape(line), highlight=False, soft_wrap=True)
            prefect_serve(*deployments, limit=1, print_starting_message=False)
    except KeyboardInterrupt:
        console.print("stopped")
    except Exception as exc:
        _fail(exc)


def serve_banner(api_url: str, names: list[str]) -> list[str]:
    """What `serve` prints: where the UI is, and how to start a run now from another shell
    (the Prefect CLI finds this server only through PREFECT_API_URL)."""
    ui = api_url.removesuffix("/api")
    first = f"exigo-sync/{names[0]}" if names else "exigo-sync/<deployment>"
    return [
        f"serving {', '.join(names)} (Ctrl-C to stop)",
        f"Prefect UI: {ui}",
        f"run one now: PREFECT_API_URL={api_url} prefect deployment run '{first}'",
    ]


@app.command()
def status(
    target: Annotated[str | None, typer.Option(help="dbt target (default: profile's).")] = None,
    last: Annotated[int, typer.Option(help="How many batches to show.")] = 10,
) -> None:
    """Show the ledger: last batches, watermark, lag behind the source clock, rejects."""
    from exigo_sync.status import render_status

    try:
        render_status(console, target=target, last=last)
    except Exception as exc:
        _fail(exc)


@app.command()
def check(
    target: Annotated[str | None, typer.Option(help="dbt target (default: profile's).")] = None,
) -> None:
    """Before the first run: can this machine reach the source and the warehouse, with the
    rights a batch needs? One line per check; exit code 1 if any failed."""
    from exigo_sync.check import run_checks
    from exigo_sync.settings import Settings

    try:
        settings = Settings.load()
        topology = settings.topology_for(target)
        duckdb_source = topology.source.type == "duckdb"
        results = run_checks(
            topology.warehouse, topology.source, topology.source_database,
            source_file=topology.source_path() if duckdb_source else None,
            source_setting=topology.source_setting() if duckdb_source else "",
            dbt_project=settings.dbt_project_dir, stale_after=settings.stale_after,
        )  # fmt: skip
    except Exception as exc:
        _fail(exc)
    console.print(f"topology: {escape(topology.describe())}", highlight=False, soft_wrap=True)
    for r in results:
        mark = (
            "[yellow]skip[/yellow]"
            if r.skipped
            else "[green]ok[/green]  "
            if r.ok
            else "[red]FAIL[/red]"
        )
        console.print(
            f"{mark} {escape(r.name)}: {escape(r.detail)}", highlight=False, soft_wrap=True
        )
        if not r.ok and not r.skipped and r.hint:
            console.print(f"       hint: {escape(r.hint)}", highlight=False, soft_wrap=True)
    # A skipped check failed nothing itself: the check it needed did (or a batch is running).
    if any(not r.ok and not r.skipped for r in results):
        raise typer.Exit(1)


@app.command()
def docs(
    target: Annotated[str | None, typer.Option(help="dbt target (default: profile's).")] = None,
    serve: Annotated[bool, typer.Option(help="Serve the site on localhost afterwards.")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve (0: any free port).")] = 8080,
) -> None:
    """Build the analysts' catalogue (dbt docs) from the warehouse as a static site
    (EXIGO_SYNC_DOCS_DIR, default <dbt target path>/docs); --serve serves it on localhost."""
    from exigo_sync.docs_site import build_docs_site, make_server, server_url

    try:
        site = build_docs_site(target=target, logger=logging.getLogger("exigo_sync"))
    except Exception as exc:
        _fail(exc)
    console.print(f"docs site written to {site.index}", highlight=False, soft_wrap=True)
    if not serve:
        return
    try:
        server = make_server(site.directory, port=port)
    except OSError as exc:
        _fail(RuntimeError(f"cannot serve the docs on port {port}: {exc}"))
    console.print(f"serving the docs at {server_url(server)} (Ctrl-C to stop)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Customers in the simulated sync DB.")] = 10_000,
    cycles: Annotated[int, typer.Option(help="Activity + sync cycles after the first sync.")] = 3,
    hours: Annotated[float, typer.Option(help="Simulated hours of activity per cycle.")] = 6.0,
    data_dir: Annotated[Path, typer.Option(help="Where the DuckDB files go.")] = Path("data"),
) -> None:
    """Simulated sync DB, several cycles of activity + sync, a summary and an analyst query."""
    from exigo_sync.demo import run_demo
    from exigo_sync.settings import Settings

    try:
        Settings.load()  # a bad EXIGO_SYNC_* value is named before anything starts
        run_demo(console, customers=customers, cycles=cycles, hours=hours, data_dir=data_dir)
    except Exception as exc:
        _fail(exc)


if __name__ == "__main__":
    app()
