"""What a batch on a DuckDB warehouse is doing, readable while it holds the file.

DuckDB lets one process at a time have a file open for writing, and while it does no other
process can open the file at all; the other way round, a process that has the file open, even
read-only, makes the batch's next writer (dbt's connection) fail. So `exigo-sync status` must not
open the warehouse while a batch runs, and cannot. Instead the batch writes what it is doing into
a small file next to the warehouse, `<warehouse>.status.json`: its batch, its step and since
when, the lock it holds and who holds it (host, pid, flow run). It writes it when it has taken
the lock, at the start of every step and, once the lock is released, with how the run ended.
Every write is atomic (a temporary file renamed over it), so a reader sees one whole state.

`status` reads the file first: while it names a live run, it shows that run and the ledger as the
analytics copy (`<warehouse>.analytics.duckdb`, the last merged state) has it, and never opens the
warehouse; otherwise it opens the warehouse read-only, for milliseconds. SQL Server warehouses
need none of this: readers and the batch share the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from exigo_sync.processes import host_identity, local_process_gone, process_start_marker
from exigo_sync.profiles import Target
from exigo_sync.warehouse.ledger import utcnow

_LOG = logging.getLogger(__name__)
SUFFIX = ".status.json"
RUNNING = "running"


def path_for(warehouse: Target) -> Path | None:
    """`<warehouse>.status.json` of a DuckDB warehouse; None for SQL Server."""
    if warehouse.type != "duckdb":
        return None
    return Path(f"{warehouse.warehouse_path()}{SUFFIX}")


@dataclass(frozen=True)
class LiveStatus:
    state: str  # running | merged | failed | stopped
    step: str
    step_started_at: datetime  # UTC, naive (as the ledger's wall-clock times)
    started_at: datetime
    updated_at: datetime
    lock_name: str
    token: str
    host: str
    host_id: str
    pid: int
    process_marker: str | None
    flow_run_id: str | None = None
    batch_id: int | None = None
    message: str = ""

    @classmethod
    def begin(cls, *, lock_name: str, token: str, flow_run_id: str | None, step: str) -> LiveStatus:
        """This process, holding the lock `lock_name` now."""
        now = utcnow()
        pid = os.getpid()
        return cls(
            state=RUNNING, step=step, step_started_at=now, started_at=now, updated_at=now,
            lock_name=lock_name, token=token, host=socket.gethostname(),
            host_id=host_identity(), pid=pid, process_marker=process_start_marker(pid),
            flow_run_id=flow_run_id,
        )  # fmt: skip

    def at_step(self, step: str, batch_id: int | None) -> LiveStatus:
        now = utcnow()
        return replace(self, step=step, step_started_at=now, updated_at=now, batch_id=batch_id)

    def ended(self, state: str, batch_id: int | None, message: str = "") -> LiveStatus:
        return replace(
            self, state=state, batch_id=batch_id, updated_at=utcnow(), message=message[:500]
        )

    def gone(self, stale_after: timedelta, now: datetime | None = None) -> str | None:
        """Why the run this file names is no longer running, or None while it is."""
        if self.state != RUNNING:
            return f"it ended ({self.state})"
        if self.host_id == host_identity():
            return local_process_gone(self.pid, self.process_marker)
        # Another host (a warehouse file on a shared disk): its file is all we see of it.
        silent = (now or utcnow()) - self.updated_at
        if silent > stale_after:
            return f"no news for {silent} from host {self.host}"
        return None

    def describe(self, now: datetime | None = None) -> str:
        """One line: "batch 7 running: step dbt since 12:01:03 UTC (42 s); lock held by ..."."""
        at = now or utcnow()
        batch = f"batch {self.batch_id}" if self.batch_id is not None else "a batch"
        since = int((at - self.step_started_at).total_seconds())
        run = f"flow run {self.flow_run_id}, " if self.flow_run_id else ""
        return (
            f"{batch} running: step {self.step} since {self.step_started_at:%H:%M:%S} UTC "
            f"({since} s); lock {self.lock_name} held by {run}host {self.host} pid {self.pid} "
            f"since {self.started_at:%Y-%m-%d %H:%M:%S} UTC"
        )


def running_batch(warehouse: Target, stale_after: timedelta) -> LiveStatus | None:
    """The batch in flight on this DuckDB warehouse, from its live status file; None when no
    live run holds it (no file, a run that ended, a run that died; a SQL Server warehouse).
    `stale_after`: how long a run on another host may stay silent (the lock's stale time)."""
    path = path_for(warehouse)
    status = read(path) if path is not None else None
    if status is None or status.gone(stale_after) is not None:
        return None
    return status


def write(path: Path, status: LiveStatus) -> None:
    """Replace the file with `status` in one step (a reader sees the old or the new one)."""
    record = {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(status).items()
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(record, out)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path) -> LiveStatus | None:
    """The file's state, or None when there is none (or it cannot be read: a file from another
    version, a disk error): status then goes by the warehouse itself."""
    try:
        record: dict[str, Any] = json.loads(path.read_text())
        for key in ("step_started_at", "started_at", "updated_at"):
            record[key] = datetime.fromisoformat(record[key])
        return LiveStatus(**record)
    except (OSError, ValueError, TypeError, KeyError):
        return None


class LiveStatusWriter:
    """The batch's side: keeps the file up to date, and never fails the batch over it."""

    def __init__(self, warehouse: Target) -> None:
        self.path = path_for(warehouse)
        self.status: LiveStatus | None = None

    def begin(self, *, lock_name: str, token: str, flow_run_id: str | None) -> None:
        if self.path is not None:
            self._write(
                LiveStatus.begin(
                    lock_name=lock_name, token=token, flow_run_id=flow_run_id, step="lock"
                )
            )

    def step(self, name: str, batch_id: int | None) -> None:
        if self.status is not None:
            self._write(self.status.at_step(name, batch_id))

    def end(self, state: str, batch_id: int | None, message: str = "") -> None:
        """After the lock is released: how the run ended, unless another run has written the
        file since (it took the lock over: the file is its now)."""
        if self.status is None or self.path is None:
            return
        current = read(self.path)
        if current is not None and current.token != self.status.token:
            return
        self._write(self.status.ended(state, batch_id, message))

    def _write(self, status: LiveStatus) -> None:
        assert self.path is not None
        try:
            write(self.path, status)
            self.status = status
        except OSError as exc:  # the batch goes on; status falls back to the warehouse
            _LOG.warning("could not write the live status file %s: %s", self.path, exc)
            self.status = status
