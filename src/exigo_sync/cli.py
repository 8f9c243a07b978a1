"""exigo-sync command line: run | serve | status | demo | simulate."""

from __future__ import annotations

import typer

from exigo_sync.simulator.cli import simulate_app

app = typer.Typer(
    name="exigo-sync",
    help="Keep an analytics warehouse in step with an Exigo Database Sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(simulate_app, name="simulate")


if __name__ == "__main__":
    app()
