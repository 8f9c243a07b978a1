"""The analysts' catalogue as a static site: built by dbt, kept in one place, served on localhost.

`dbt docs generate --static` writes `static_index.html` into dbt's target path: one HTML file
with the manifest and the catalogue inlined, so it opens from disk or any web server with no
`manifest.json` / `catalog.json` beside it. dbt runs in a child process (`dbt_runner.run_dbt`),
as for a batch. The file is copied to `index.html` in the site folder (`EXIGO_SYNC_DOCS_DIR`,
default `<dbt target path>/docs`), atomically, so a server running meanwhile never sends half
a file and the next `dbt` command (which rewrites the target path) does not disturb it.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from exigo_sync.dbt_runner import DbtBuildFailed, DbtInvocation, run_dbt
from exigo_sync.settings import Settings

STATIC_INDEX = "static_index.html"  # what dbt-core 1.11 writes with --static
SITE_INDEX = "index.html"
DEFAULT_PORT = 8080  # dbt docs serve's default
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class DocsSite:
    directory: Path

    @property
    def index(self) -> Path:
        return self.directory / SITE_INDEX


def site_dir(settings: Settings, invocation: DbtInvocation) -> Path:
    """Where the site lives: EXIGO_SYNC_DOCS_DIR, else `docs/` under dbt's target path."""
    return (settings.docs_dir or invocation.target_path / "docs").resolve()


def site_index(settings: Settings, target: str) -> Path:
    """The site's index.html for the warehouse target `target` (whether built yet or not)."""
    return site_dir(settings, settings.dbt_invocation(target)) / SITE_INDEX


def build_docs_site(
    settings: Settings | None = None,
    *,
    target: str | None = None,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> DocsSite:
    """Run `dbt docs generate --static` against the warehouse and publish the result."""
    s = settings or Settings.load()
    log = logger or logging.getLogger("exigo_sync")
    topology = s.topology_for(target)
    invocation = s.dbt_invocation(topology.warehouse.name)
    static_index = invocation.target_path / STATIC_INDEX
    static_index.unlink(missing_ok=True)  # never publish a previous run's page
    code = run_dbt(invocation, ["docs", "generate", "--static"], logger=log)
    if code != 0:
        raise DbtBuildFailed(
            f"dbt docs generate failed (exit code {code}): see the dbt errors above, and "
            f"dbt's log {invocation.log_file}",
            None,
        )
    if not static_index.is_file():
        raise DbtBuildFailed(
            f"dbt docs generate --static succeeded but wrote no {static_index}", None
        )
    site = DocsSite(site_dir(s, invocation))
    _publish(static_index, site.index)
    return site


def _publish(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(source.read_bytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise
        pass


def make_server(
    directory: Path, *, port: int = DEFAULT_PORT, host: str = LOCALHOST
) -> ThreadingHTTPServer:
    """A static file server for the site folder, bound to localhost (port 0: any free port)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


@contextmanager
def serving(directory: Path, *, port: int = 0, host: str = LOCALHOST) -> Iterator[str]:
    """Serve the site from a background thread for the duration of the block; yields its URL."""
    server = make_server(directory, port=port, host=host)
    thread = threading.Thread(target=server.serve_forever, name="exigo-sync-docs", daemon=True)
    thread.start()
    try:
        yield server_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
