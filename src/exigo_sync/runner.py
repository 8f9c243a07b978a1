"""Run the `exigo-sync` flow in this process, as the CLI and the demo do, with the console
showing one line per error (the ledger and Prefect keep the rest)."""

from __future__ import annotations

import logging


class _NoTraceback(logging.Filter):
    """Operators get one line per error on the console; the ledger and Prefect keep the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def console_handlers() -> list[logging.Handler]:
    """Prefect's console handlers (on the root logger once Prefect's logging is set up)."""
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()
    return [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]


def _quiet_console_tracebacks() -> None:
    for handler in console_handlers():
        if not any(isinstance(f, _NoTraceback) for f in handler.filters):
            handler.addFilter(_NoTraceback())


def run_flow(**params: object) -> dict:
    """Run one batch in this process, reporting to PREFECT_API_URL or, without one, to a
    private Prefect API that ends with this process (exigo_sync.prefect_api)."""
    from exigo_sync.flow import exigo_sync
    from exigo_sync.prefect_api import prefect_api

    _quiet_console_tracebacks()
    with prefect_api():
        state = exigo_sync(**params, return_state=True)
        result = state.result(raise_on_failure=False)
    if state.is_failed() or isinstance(result, BaseException):
        raise result if isinstance(result, BaseException) else RuntimeError(state.message)
    return result
