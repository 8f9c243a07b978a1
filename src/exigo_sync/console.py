"""What a batch shows on the console: one line per step, with its counts.

Everything a batch logs reaches Prefect's run log (the UI and the API keep it); the console of
the process running the batch shows less unless asked for more (`exigo-sync run --verbose`,
EXIGO_SYNC_VERBOSE=true):

- detail lines (each dbt node, each table pinned) are logged with `extra=DETAIL` and hidden;
  dbt's own log file (`dbt.log` in dbt's log path) keeps dbt's lines too (info and above;
  EXIGO_SYNC_DBT_LOG_LEVEL_FILE=debug adds every statement);
- Prefect's "Finished in state Completed()" line of every task is hidden (a failed task's line
  is not);
- the CLI also keeps tracebacks off the console: one line per error (`no_tracebacks`).
"""

from __future__ import annotations

import logging

# `logger.info(..., extra=DETAIL)`: in the run log, off the console unless verbose.
DETAIL = {"exigo_detail": True}


class _HideDetail(logging.Filter):
    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return True
        if getattr(record, "exigo_detail", False):
            return False
        return not (
            record.name.startswith("prefect.task_runs")
            and record.getMessage().startswith("Finished in state Completed")
        )


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


def hide_detail(verbose: bool) -> None:
    """One line per step on this process's console (all of them when `verbose`)."""
    for handler in console_handlers():
        found = [f for f in handler.filters if isinstance(f, _HideDetail)]
        if found:
            found[0].verbose = verbose
        else:
            handler.addFilter(_HideDetail(verbose))


def no_tracebacks() -> None:
    for handler in console_handlers():
        if not any(isinstance(f, _NoTraceback) for f in handler.filters):
            handler.addFilter(_NoTraceback())
