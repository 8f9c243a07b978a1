"""Child processes that cannot outlive the run that started them.

A batch starts two kinds of helper process: dbt (so a cancelled or timed-out run can stop its
queries by ending the process) and, for the CLI, a private Prefect API server. A run killed
outright (SIGKILL, the OOM killer) runs no cleanup, so each child watches its parent itself and
ends when the parent is gone: nothing keeps writing after the run has died (CONTRACT R4).

The watch polls the parent pid rather than using Linux's PR_SET_PDEATHSIG, which fires when the
*thread* that started the child exits — Prefect starts work from short-lived threads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The environment variable through which a child learns which pid it must outlive.
PARENT_PID_ENV = "EXIGO_SYNC_PARENT_PID"
_POLL_SECONDS = 0.5


def watch_parent(exit_code: int = 143) -> None:
    """In a child: end this process as soon as the parent named in the environment is gone.

    Call first thing in a child's `__main__`. Without the variable (started by hand) it does
    nothing.
    """
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected:
        return
    parent = int(expected)

    def watch() -> None:
        while True:
            # Reparenting (to init or a subreaper) is how POSIX says the parent died.
            if os.getppid() != parent:
                os._exit(exit_code)
            time.sleep(_POLL_SECONDS)

    threading.Thread(target=watch, name="exigo-sync-parent-watch", daemon=True).start()


# How long a stopped child may take to cancel its queries before its watchdog ends it: inside
# the parent's grace (stop_child's 5 s) between SIGTERM and SIGKILL.
CANCEL_GRACE_SECONDS = 4.0


@dataclass
class Stop:
    """What `cancel_on_term` saw: the signal that stopped the process, if any."""

    signal: int | None = None

    @property
    def exit_code(self) -> int:
        """The shell's code for the signal (143 SIGTERM, 130 SIGINT)."""
        return 128 + (self.signal or signal.SIGTERM)


def cancel_on_term(grace_seconds: float = CANCEL_GRACE_SECONDS) -> Stop:
    """In a child: the first SIGTERM / SIGINT raises KeyboardInterrupt in the main thread, as
    Ctrl-C would, so the work can cancel its open statements and return (dbt cancels its
    queries on KeyboardInterrupt: `adapter.cancel_open_connections`, DuckDB's interrupt(),
    SQLCancel on SQL Server). A watchdog ends the process `grace_seconds` after that signal
    whatever the work does (exit 143 / 130), inside the parent's grace before SIGKILL. Later
    signals change nothing (after a Ctrl-C the parent's SIGTERM follows).

    Returns the `Stop` the caller reads once the work has returned: a stopped process should
    end with `os._exit(stop.exit_code)`.
    """
    stop = Stop()

    def handler(signum: int, frame: Any) -> None:
        if stop.signal is not None:
            return
        stop.signal = signum

        def watchdog() -> None:
            time.sleep(grace_seconds)
            _flush_and_exit(stop.exit_code)

        threading.Thread(target=watchdog, name="exigo-sync-stop-watchdog", daemon=True).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _flush_and_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def exit_on_term() -> None:
    """In a child with no statement of its own to cancel: SIGTERM / SIGINT end the process at
    once (exit 143 / 130).

    Stopping mid-statement is safe: DuckDB and SQL Server roll back a transaction whose
    process or connection went away, so a model is either written whole or not at all (H8).
    """
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))


def spawn_child(
    module: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: Any = None,
    stderr: Any = None,
    own_process_group: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `python -m module args` as a child that ends when this process ends.

    own_process_group: keep the child out of our process group, so a Ctrl-C in the terminal
    (sent to the whole group) reaches only us and we decide when the child stops.
    """
    child_env = {**(env if env is not None else os.environ), PARENT_PID_ENV: str(os.getpid())}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=child_env,
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        start_new_session=own_process_group,
    )


def stop_child(proc: subprocess.Popen[Any], grace_seconds: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL after `grace_seconds`; returns the exit code (None if unknown)."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        return proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        try:
            return proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            return None


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (ended, not yet reaped by its parent) has ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) is all we know
    return state != "Z"


def host_identity() -> str:
    """This host, as the lock row records it: the hostname, the machine id and the pid
    namespace. Two containers that share a hostname (and even a machine id) still have pid
    namespaces of their own, and a pid means something only within its namespace, so they
    count as two hosts: neither judges the other's holder by a pid it cannot see."""
    parts = [socket.gethostname()]
    for source in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            parts.append(Path(source).read_text().strip()[:12])
            break
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return "|".join(parts)


def process_start_marker(pid: int) -> str | None:
    """Something that differs between two processes that had the same pid: on Linux the
    process start time in clock ticks since boot, plus the boot id. None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return f"{boot_id}:{fields[19]}"  # field 22 of the full line: starttime


def local_process_gone(pid: int, start_marker: str | None) -> str | None:
    """Why process `pid` of this host, started as `start_marker` recorded, is no longer that
    process (gone, or its pid reused), or None while it runs."""
    if not pid_alive(pid):
        return f"pid {pid} is gone"
    marker = process_start_marker(pid)
    if marker and start_marker and marker != start_marker:
        return f"pid {pid} now belongs to another process"
    return None
