"""Run the `exigo-sync` flow in this process, as the CLI and the demo do, with the console
showing one line per step and per error (the ledger, dbt's log and Prefect keep the rest)."""

from __future__ import annotations

from collections.abc import Callable

from exigo_sync.console import console_handlers, hide_detail, no_tracebacks

__all__ = ["console_handlers", "run_flow"]


def run_flow(announce: Callable[[str], None] | None = None, **params: object) -> dict:
    """Run one batch in this process, reporting to PREFECT_API_URL or, without one, to a
    private Prefect API that ends with this process (exigo_sync.prefect_api; `announce` is told
    while it starts)."""
    from exigo_sync.flow import exigo_sync
    from exigo_sync.prefect_api import prefect_api
    from exigo_sync.settings import Settings

    no_tracebacks()
    hide_detail(Settings.load().verbose)
    with prefect_api(announce=announce):
        state = exigo_sync(**params, return_state=True)
        result = state.result(raise_on_failure=False)
    if state.is_failed() or isinstance(result, BaseException):
        raise result if isinstance(result, BaseException) else RuntimeError(state.message)
    return result
