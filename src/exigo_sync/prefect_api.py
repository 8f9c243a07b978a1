"""The Prefect API a CLI run reports to.

With `PREFECT_API_URL` set (a `prefect server start`, Prefect Cloud) runs report there. Without
it Prefect would start an "ephemeral" API server as a child process that nothing stops when the
CLI is killed outright; exigo-sync starts the same server itself, as a child that ends with the
CLI (exigo_sync.processes), in its own process group so that a Ctrl-C reaches the run first and
the run can still release its Prefect concurrency slot before the server goes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from exigo_sync.processes import spawn_child, stop_child

# Prefect's own default is 20 s; this machine has measured 9-16 s, and CI machines are slower.
STARTUP_TIMEOUT_SECONDS = 90.0

# While a private API serves this process (and the flow processes `serve` starts, through the
# environment): "<api url> <PREFECT_HOME>". Its leases live in the server's memory and die with
# it (exigo_sync.warehouse.lock relies on this).
PRIVATE_API_ENV = "EXIGO_SYNC_PRIVATE_PREFECT_API"


def private_api_home(api_url: str | None) -> str | None:
    """The PREFECT_HOME of the private API at `api_url`, or None if it is not one."""
    url, _, home = os.environ.get(PRIVATE_API_ENV, "").partition(" ")
    return home if home and url == api_url else None


class PrefectApiError(RuntimeError):
    """The private Prefect API server did not start."""


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


STARTING = "starting a private Prefect API (set PREFECT_API_URL to use a running server)..."


@contextlib.contextmanager
def prefect_api(
    *,
    services: bool = False,
    port: int | None = None,
    announce: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """Yield the API URL this process uses; start a private server when none is configured
    (`announce` is told first: it takes seconds).

    services: run the server's services and UI too (the scheduler, lease expiry, automations),
    which `exigo-sync serve` needs; without them it is what Prefect calls an ephemeral server,
    and no "View at" link to it is printed (it ends with this process, and has no UI).
    """
    import httpx
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_UI_URL,
        get_current_settings,
        temporary_settings,
    )

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    if announce is not None:
        announce(STARTING)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True)}
    # The UI asks its server for the API's address (GET /ui-settings), which Prefect takes from
    # PREFECT_UI_API_URL, else PREFECT_API_URL, else http://<server host>:4200/api: tell it
    # this server's own port.
    env["PREFECT_UI_API_URL"] = url
    if not services:
        # What Prefect sets for its ephemeral server (prefect/server/api/server.py).
        env.update(
            {
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            }
        )
    with tempfile.TemporaryFile() as errors:
        proc = spawn_child(
            "exigo_sync.child.prefect_api", ["--port", str(port)], env=env,
            stdout=errors, stderr=errors, own_process_group=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
            with httpx.Client() as client:
                while True:
                    if proc.poll() is not None:
                        errors.seek(0)
                        tail = errors.read().decode(errors="replace").strip()[-2000:]
                        raise PrefectApiError(
                            f"the Prefect API server exited with code {proc.returncode}: {tail}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{url}/health", timeout=2).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise PrefectApiError(
                            f"the Prefect API server did not answer within "
                            f"{STARTUP_TIMEOUT_SECONDS:.0f}s (set PREFECT_API_URL to use a "
                            "running `prefect server start` instead)"
                        )
                    time.sleep(0.1)
            home = str(get_current_settings().home.resolve())
            previous = os.environ.get(PRIVATE_API_ENV)
            os.environ[PRIVATE_API_ENV] = f"{url} {home}"
            try:
                updates: dict[Any, Any] = {PREFECT_API_URL: url}
                if not services:
                    updates[PREFECT_UI_URL] = ""  # no "View at <a server about to end>"
                    # Heartbeats let a server's zombie-flow automation find a run whose
                    # process died; this server dies with the process, and nobody reads
                    # them. Prefect's heartbeat thread sleeps in 1 s steps, and each flow run
                    # waits for it to end: up to 1 s a run, half a second on average.
                    updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
                with temporary_settings(updates=updates):
                    yield url
            finally:
                if previous is None:
                    os.environ.pop(PRIVATE_API_ENV, None)
                else:
                    os.environ[PRIVATE_API_ENV] = previous
        finally:
            _drain_to_api()
            stop_child(proc)


def _drain_to_api() -> None:
    """Send the logs and events still queued while their server is up (else Prefect retries
    against a stopped server for a minute at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=10)
