"""Child processes that cannot outlive the run that started them.

A batch starts two kinds of helper process: dbt (so a cancelled or timed-out run can stop its
queries by ending the process) and, for the CLI, a private Prefect API server. A run killed
outright (SIGKILL, the OOM killer) runs no cleanup, so each child watches its parent itself and
ends when the parent is gone: nothing keeps writing after the run has died (CONTRACT R4).

The watch polls the parent pid rather than using Linux's PR_SET_PDEATHSIG, which fires when the
*thread* that started the child exits — Prefect starts work from short-lived threads.

A child that must start fast (dbt, once per batch) is forked from the run's fork server
(`ForkServer`, exigo_sync.child.fork_server), which has its modules imported already. It is a
process of its own all the same: watched, stopped and judged by its exit code as any other.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The environment variables through which a child learns which process it must outlive: its
# pid, and its start marker (a pid is reused once its process is gone).
PARENT_PID_ENV = "EXIGO_SYNC_PARENT_PID"
PARENT_START_ENV = "EXIGO_SYNC_PARENT_START"
# A fork request (arguments and environment) fits in one message of the server's socket.
MAX_REQUEST_BYTES = 1 << 20
# The fork server needs Linux: SOCK_SEQPACKET Unix sockets, and a fork that is safe after the
# imports (macOS's system frameworks are not). Elsewhere children are started afresh.
FORK_SERVER_SUPPORTED = sys.platform.startswith("linux")
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
    marker = os.environ.get(PARENT_START_ENV) or None

    def watch() -> None:
        while True:
            # Reparenting (to init or a subreaper) is how POSIX says the parent died. A process
            # forked by the fork server has the server as its parent: it watches the run itself.
            if os.getppid() != parent and local_process_gone(parent, marker):
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
            flush_and_exit(stop.exit_code)

        threading.Thread(target=watchdog, name="exigo-sync-stop-watchdog", daemon=True).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def flush_and_exit(code: int) -> None:
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
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start `python -m module args` as a child that ends when this process ends.

    own_process_group: keep the child out of our process group, so a Ctrl-C in the terminal
    (sent to the whole group) reaches only us and we decide when the child stops.
    """
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=_child_env(env),
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        start_new_session=own_process_group,
        pass_fds=tuple(pass_fds),
    )


def _child_env(env: Mapping[str, str] | None) -> dict[str, str]:
    me = os.getpid()
    return {
        **(env if env is not None else os.environ),
        PARENT_PID_ENV: str(me),
        PARENT_START_ENV: _start_marker_of(me) or "",
    }


@functools.cache
def _start_marker_of(pid: int) -> str | None:
    """This process's start marker, read once (keyed by pid: a forked copy reads its own)."""
    return process_start_marker(pid)


def name_process(name: str) -> None:
    """What ps and top call this process (Linux; 15 bytes at most; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # 15: PR_SET_NAME


@functools.cache
def code_version() -> str:
    """What a forked process would run: the installed exigo-sync and dbt-core. A server shared
    since before an upgrade still holds the old code; a run of the new code must not fork
    from it."""
    from importlib import metadata

    found = []
    for dist in ("exigo-sync", "dbt-core"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    return ", ".join(found)


class ForkRefused(OSError):
    """The fork server would not fork for this process (it runs other code)."""


class ForkServer:
    """One side of a fork server (exigo_sync.child.fork_server): a process that imported some
    modules once and forks a process per `fork` call, which then starts without importing
    them. `start` one (it ends when this process ends), or `connect` to the one `serve`
    shares with the flow runs it starts (its address in FORK_SERVER_ENV)."""

    def __init__(
        self, channel: socket.socket, process: subprocess.Popen[bytes] | None = None,
        address: str | None = None,
    ) -> None:  # fmt: skip
        self.process = process  # None when connected to another process's server
        self.address = address  # where others connect, when this process shares its server
        self._channel = channel
        self._lock = threading.Lock()  # one reader of the socket at a time
        self._pids: dict[int, int] = {}  # request ref -> pid
        self._codes: dict[int, int] = {}  # pid -> exit code
        self._refs = 0
        self.ended = False

    @classmethod
    def start(
        cls, modules: Sequence[str], *, share: bool = False, env: Mapping[str, str] | None = None
    ) -> ForkServer:
        """A server of this process's own with `modules` imported; `share`: others of this
        user connect at `.address` (a socket in a directory only this user can enter); `env`:
        added to the server's own environment (what its modules prepare from)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener, address = None, None
        if share:
            address = str(Path(tempfile.mkdtemp(prefix="exigo-sync-fork-")) / "socket")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            listener.bind(address)
            listener.listen()
        fds = [theirs.fileno(), *([listener.fileno()] if listener else [])]
        try:
            process = spawn_child(
                "exigo_sync.child.fork_server",
                [str(theirs.fileno()), str(listener.fileno()) if listener else "-", *modules],
                env={**os.environ, **(env or {})},
                pass_fds=fds,
            )
        finally:
            theirs.close()
            if listener is not None:
                listener.close()
        return cls(ours, process, address)

    @classmethod
    def connect(cls, address: str) -> ForkServer:
        """The server another process shares at `address` (OSError if none answers)."""
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            channel.connect(address)
        except OSError:
            channel.close()
            raise
        return cls(channel)

    @property
    def running(self) -> bool:
        return not self.ended and (self.process is None or self.process.poll() is None)

    def fork(
        self, name: str, module: str, args: Sequence[str], *,
        env: Mapping[str, str] | None = None, cwd: Path | None = None,
    ) -> ForkedChild:  # fmt: skip
        """`module.main(args)` in a new process called `name`, with `env` (default: this
        process's environment, now) and `cwd` (default: this process's); its stdout and
        stderr are one pipe, `.stdout`. Raises OSError if the server has ended."""
        read_end, write_end = os.pipe()
        try:
            with self._lock:
                self._refs += 1
                ref = self._refs
                request = {
                    "ref": ref, "name": name, "module": module, "args": list(args),
                    "env": _child_env(env), "cwd": str(cwd or Path.cwd()),
                    "version": code_version(),
                }  # fmt: skip
                socket.send_fds(self._channel, [json.dumps(request).encode()], [write_end])
            pid = self._await(lambda: self._pids.pop(ref, None), timeout=None)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # the child has its own: the pipe ends when the child does
        if not isinstance(pid, int):
            os.close(read_end)
            if pid is None:
                raise OSError("the fork server ended before it forked")
            self.close()
            raise ForkRefused(pid)
        return ForkedChild(self, pid, name, os.fdopen(read_end, "rb"))

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """`pid`'s exit code once the server reports it (None: not within `timeout`, or the
        server has ended)."""
        return self._await(lambda: self._codes.pop(pid, None), timeout)

    def _await(self, found: Any, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (value := found()) is None and not self.ended:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                if (value := found()) is not None:
                    return value
                with selectors.DefaultSelector() as selector:
                    selector.register(self._channel, selectors.EVENT_READ)
                    ready = selector.select(left)
                if ready:
                    self._file(self._channel.recv(MAX_REQUEST_BYTES))
                    continue
            if left is not None and left <= 0:
                return None
        return value

    def _file(self, message: bytes) -> None:
        if not message:
            self.ended = True
            return
        answer = json.loads(message)
        if "refused" in answer:
            self._pids[answer["ref"]] = str(answer["refused"])
        elif "ref" in answer:
            self._pids[answer["ref"]] = answer["pid"]
        else:
            self._codes[answer["pid"]] = answer["code"]

    def close(self) -> None:
        """Hang up; a server of this process's own then ends (without waiting for it)."""
        self._channel.close()
        self.ended = True
        if self.address is not None:
            with contextlib.suppress(OSError):
                Path(self.address).unlink()
                Path(self.address).parent.rmdir()


# Where `serve` shares its fork server with the flow runs it starts (processes of their own).
FORK_SERVER_ENV = "EXIGO_SYNC_FORK_SERVER"
_fork_server: ForkServer | None = None
_fork_server_lock = threading.Lock()
_refused_by: set[str] = set()  # shared servers that run other code than this process


def fork_server(
    modules: Sequence[str], *, share: bool = False, env: Mapping[str, str] | None = None
) -> ForkServer:
    """This process's fork server: the one shared at FORK_SERVER_ENV if it answers, else one
    of its own, started with `modules` imported and `env` added to its environment (one that
    ended is replaced). `share`: start it (if none runs yet) so that this process's children
    connect to it, via FORK_SERVER_ENV in this process's environment, which they inherit."""
    global _fork_server
    with _fork_server_lock:
        server = _fork_server
        if server is None or not server.running:
            if server is not None:
                server.close()
                if server.process is not None:
                    stop_child(server.process, grace_seconds=1.0)
            server = _fork_server = None if share else _connect_shared()
            if server is None:
                server = _fork_server = ForkServer.start(modules, share=share, env=env)
        if share and server.address is not None:
            os.environ[FORK_SERVER_ENV] = server.address
        return server


def _connect_shared() -> ForkServer | None:
    address = os.environ.get(FORK_SERVER_ENV)
    if not address or address in _refused_by:
        return None
    try:
        return ForkServer.connect(address)
    except OSError:  # its owner has gone: this process starts its own
        return None


def stop_fork_server() -> None:
    """End this process's fork server, if one runs, and wait for it (the next `fork_child`
    starts a new one)."""
    global _fork_server
    with _fork_server_lock:
        server, _fork_server = _fork_server, None
    if server is not None:
        server.close()
        if server.process is not None:
            stop_child(server.process, grace_seconds=5.0)


def fork_child(
    name: str, module: str, args: Sequence[str], *, preload: Sequence[str],
    env: Mapping[str, str] | None = None, cwd: Path | None = None,
) -> ForkedChild:  # fmt: skip
    """`ForkServer.fork` on this process's fork server (started with `preload` imported if
    none runs yet); a server found ended, or a shared one that runs other code (exigo-sync
    upgraded since `serve` started), is replaced by one of this process's own, once."""
    server = fork_server(preload)
    try:
        return server.fork(name, module, args, env=env, cwd=cwd)
    except ForkRefused:
        if server.address is None and (shared := os.environ.get(FORK_SERVER_ENV)):
            _refused_by.add(shared)
    except OSError:
        pass
    return fork_server(preload).fork(name, module, args, env=env, cwd=cwd)


class ForkedChild:
    """A process forked by the fork server: what `stop_child` and exigo_sync.dbt_runner use of
    subprocess.Popen. The server is its parent and reports its exit code; should the server
    have gone first, the process counts as ended once its pid is gone, code unknown (255)."""

    def __init__(self, server: ForkServer, pid: int, name: str, stdout: Any) -> None:
        self._server = server
        self.pid = pid
        self.name = name
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self._wait(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._wait(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.name, timeout or 0)
        return code

    def _wait(self, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            code = self._server.exit_code(self.pid, min(left, 0.5) if left is not None else 0.5)
            if code is not None:
                self.returncode = code
            elif self._server.ended and not pid_alive(self.pid):
                self.returncode = 255
            elif left is not None and left <= 0:
                break
            elif self._server.ended:
                time.sleep(0.05)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def stop_child(proc: subprocess.Popen[Any] | ForkedChild, grace_seconds: float = 5.0) -> int | None:
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
