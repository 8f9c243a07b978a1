"""dbt in a child process of the run: `python -m exigo_sync.child.dbt build --select ...`.

A separate process is what lets a cancelled, timed-out or killed run stop dbt's queries: the
run stops this process (SIGTERM, then SIGKILL after 5 s; `processes.stop_child`). On SIGTERM or
SIGINT dbt first cancels its statements in flight the way it does on Ctrl-C (KeyboardInterrupt
in dbt's main thread: `adapter.cancel_open_connections`, i.e. DuckDB's interrupt() or SQLCancel
on SQL Server), so the warehouse stops the statement at once instead of finding out from a
closed connection; a watchdog ends the process within 4 s whatever dbt does (R4). Either way
the warehouse rolls back the statement in flight (H8).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exigo_sync.processes import cancel_on_term, watch_parent


def main(argv: list[str]) -> int:
    watch_parent()
    stop = cancel_on_term()
    try:
        from dbt.cli.main import dbtRunner

        # dbt's stdout logger formats every event, debug ones included, before its level
        # drops them (~2,000 per batch); the run's log gets info and above from this callback
        # instead, as the same JSON lines. dbt.log keeps what --log-level-file says (argv).
        result = dbtRunner(callbacks=[_print_event]).invoke([*argv, "--log-level", "none"])
    except KeyboardInterrupt:  # stopped before dbt ran (dbt catches its own)
        result = None
    if stop.signal is not None:
        # dbt has cancelled its queries and returned: end now, with the shell's code for the
        # signal (no interpreter shutdown waiting on dbt's threads).
        _exit(stop.exit_code)
    assert result is not None
    if "--no-write-json" in argv:
        _write_run_results(result, argv)
    _release_adapters()
    if result.success:
        return 0
    # dbt's own convention: 1 = a node failed, 2 = dbt could not run at all.
    return 2 if result.exception is not None else 1


_PRINTED_LEVELS = frozenset({"info", "warn", "error"})
_print_lock = threading.Lock()


def _print_event(event: Any) -> None:
    """One JSON line per dbt event of level info and above, in the shape dbt's JSON log has
    ({"info": {"name", "level", "msg"}}: what exigo_sync.dbt_runner forwards)."""
    info = event.info
    if info.level not in _PRINTED_LEVELS:
        return
    line = json.dumps({"info": {"name": info.name, "level": info.level, "msg": info.msg}})
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _write_run_results(result: Any, argv: list[str]) -> None:
    """run_results.json, as dbt writes it, for a command run with --no-write-json (which also
    skips the manifest: the batch needs only the results). Nothing when dbt could not run."""
    from pathlib import Path

    executed = getattr(result, "result", None)
    if executed is None or not hasattr(executed, "write") or "--target-path" not in argv:
        return
    target = Path(argv[argv.index("--target-path") + 1])
    target.mkdir(parents=True, exist_ok=True)
    executed.write(str(target / "run_results.json"))


def _release_adapters() -> None:
    """Close dbt's adapters and release their locks. Each holds a multiprocessing lock, a named
    semaphore, which multiprocessing unlinks when the interpreter exits: a child forked by the
    fork server ends with os._exit, which skips that, and multiprocessing's resource tracker
    would print "leaked semaphore objects" into every batch's log. So its exit hook's first
    step runs here (the finalizers of what is still alive; a full garbage collection to find
    the adapters' locks took ~0.2 s a batch)."""
    from multiprocessing import util

    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    util._run_finalizers(0)  # as multiprocessing.util._exit_function begins


# The last parse's manifest (`<target path>/partial_parse.msgpack`), in the fork server's
# environment (exigo_sync.dbt_runner.warm_up).
WARM_MANIFEST_ENV = "EXIGO_SYNC_DBT_WARM_MANIFEST"


def prepare_fork_server(waiting: Callable[[], bool]) -> bool:
    """In the fork server, before it forks (exigo_sync.child.fork_server): compile the Jinja
    template of every macro of the last parse into dbt's template cache, which each forked dbt
    process then finds filled. A batch's dbt calls about 220 macros, and compiling their
    templates was about 1.4 s of its CPU, every batch. The cache is keyed by the macro's text:
    one edited since the last parse is compiled afresh by the batch, as it would be anyway.
    Stops when `waiting()` (a batch waits to be forked).
    True when every macro was compiled; False when stopped, or when there is no manifest yet
    (nothing parsed the project on this machine)."""
    path = os.environ.get(WARM_MANIFEST_ENV)
    if not path or not Path(path).is_file():
        return False
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder
    from dbt_common.clients.jinja import template_cache

    manifest = Manifest.from_msgpack(
        Path(path).read_bytes(), decoder=extended_mashumuro_decoder
    )  # as dbt reads it for partial parsing
    # dbt's own last: a batch calls the project's and the adapter's macros first.
    macros = sorted(manifest.macros.values(), key=lambda m: (m.package_name == "dbt", m.unique_id))
    for macro in macros:
        if waiting():
            return False
        with contextlib.suppress(Exception):  # dbt reports a broken macro when it calls it
            template_cache.get_node_template(macro)
    return True


def _exit(code: int) -> None:
    from exigo_sync.processes import flush_and_exit

    flush_and_exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
