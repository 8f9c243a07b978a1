"""The run's fork server:
`python -m exigo_sync.child.fork_server <socket fd> <listening socket fd or -> <module>...`.

It imports the modules once (for dbt, ~3 s of CPU), then forks one process per request that
arrives on the socket, so each batch's dbt process starts with dbt imported
(exigo_sync.processes.ForkServer is the run's side). A request carries what the new process
runs (`<module>.main(args)`), its environment, working directory and name, and the write end
of the pipe that becomes its stdout and stderr. The server answers with the new pid, and with
its exit code once it has ended.

Before its first fork, a module may also prepare work ahead for the processes (its
`prepare_fork_server`): dbt's compiles the Jinja templates of the project's macros, which
every batch's dbt otherwise compiles again. It stops as soon as a request arrives.

`exigo-sync serve` starts its server with a listening socket too (a path in a directory only
its user can enter), where the flow runs it starts, each a process of its own, connect: every
served batch's dbt process is forked warm. Connections from another user are refused (the
peer's credentials are checked as well).

A request also names the exigo-sync and dbt-core it was made with: a server that runs others
(serve started before an upgrade) refuses it, and the run starts a server of its own. A
message that is not a request ends that connection, not the server.

The server ends when its owner does (the first socket reaches its end). It ignores SIGTERM and
SIGINT: sent to the run's whole process group (a terminal's Ctrl-C, a container stop), they are
for the run, which then stops the processes it asked for and learns from the server how they
ended.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

from exigo_sync.processes import MAX_REQUEST_BYTES, code_version, flush_and_exit, name_process


def main(argv: list[str]) -> int:
    # No watch_parent thread here (a process that forks should have no other thread): the
    # socket reaching its end is how the server learns that its owner has gone.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    owner = socket.socket(fileno=int(argv[0]))
    listener = None if argv[1] == "-" else socket.socket(fileno=int(argv[1]))
    modules = argv[2:]
    _import(modules, owner)
    return _serve(owner, listener, code_version(), modules)


def _import(modules: list[str], channel: socket.socket) -> None:
    """Import `modules`, ending the process at once should the run end meanwhile (the imports
    take seconds; a run stopped that early must not leave the server behind). The watching
    thread is gone before the first fork."""
    importing = threading.Event()
    importing.set()

    def watch() -> None:
        while importing.is_set():
            ready, _, _ = select.select([channel], [], [], 0.1)
            if ready and not channel.recv(1, socket.MSG_PEEK):
                os._exit(0)  # the run has ended
            if ready:  # a request waits for the imports
                time.sleep(0.1)

    watcher = threading.Thread(target=watch, name="exigo-sync-fork-server-watch", daemon=True)
    watcher.start()
    try:
        for module in modules:
            # One that cannot be imported here (an adapter whose driver is missing) is imported
            # again by the process that needs it, which then reports the error in its own log.
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    finally:
        importing.clear()
        watcher.join()


def _prepare(modules: list[str], channels: list[socket.socket]) -> list[str]:
    """Let each of `modules` that prepares work ahead for the processes forked from here (a
    `prepare_fork_server(waiting)` function) do it now; `waiting()` turns true as soon as a
    request (or the end of the run) arrives on one of `channels`, and the module then stops.
    Returns those that did not finish (interrupted, or nothing to prepare from yet). What the
    imports and the preparation made is then shared by every forked process: kept out of the
    collector's reach, it is neither scanned again nor copied page by page by each process's
    collections."""

    def waiting() -> bool:
        return bool(select.select(channels, [], [], 0)[0])

    unfinished = []
    for module in modules:
        prepare = getattr(sys.modules.get(module), "prepare_fork_server", None)
        if callable(prepare):
            finished = False
            # Ahead-of-time work only: whatever goes wrong, each process does it itself.
            with contextlib.suppress(Exception):
                finished = bool(prepare(waiting))
            if not finished:
                unfinished.append(module)
    gc.collect()
    gc.freeze()
    return unfinished


def _serve(
    owner: socket.socket, listener: socket.socket | None, version: str, modules: list[str]
) -> int:
    """Let `modules` prepare, then fork on request until the owner ends. A module whose
    preparation did not finish (a request came first, or no dbt parse yet on a new machine)
    tries again when the server is next idle, after a forked process ends."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select through the pipe
    selector = selectors.DefaultSelector()
    selector.register(owner, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    if listener is not None:
        selector.register(listener, selectors.EVENT_READ)
    channels = [owner]
    requested_by: dict[int, socket.socket] = {}  # pid -> the channel that asked for it

    def _inputs() -> list[socket.socket]:  # where requests (and new connections) arrive
        return [*channels, *([listener] if listener is not None else [])]

    unprepared = _prepare(modules, _inputs())
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                _accept(listener, selector, channels)
            elif key.fileobj is wake_read:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
                _report_ended(requested_by)
                if unprepared and not requested_by:
                    unprepared = _prepare(unprepared, _inputs())
            else:
                channel: socket.socket = key.fileobj  # type: ignore[assignment]
                message, fds, _, _ = socket.recv_fds(channel, MAX_REQUEST_BYTES, 1)
                try:
                    request = _request(message, fds) if message else None
                except ValueError:  # not a request of this protocol: hang up
                    request = None
                if request is None:  # the run has ended, or spoke another protocol
                    for fd in fds:
                        os.close(fd)
                    if channel is owner:
                        return 0 if not message else 1
                    selector.unregister(channel)
                    channels.remove(channel)
                    channel.close()
                    continue
                if request["version"] != version:
                    for fd in fds:
                        os.close(fd)
                    refused = f"this fork server runs {version}; the run, {request['version']}"
                    _send(channel, {"ref": request["ref"], "refused": refused})
                    continue
                pid = os.fork()
                if pid == 0:
                    others = [c.fileno() for c in channels] + [wake_read, wake_write]
                    _become(request, fds, others + ([listener.fileno()] if listener else []))
                for fd in fds:
                    os.close(fd)
                requested_by[pid] = channel
                _send(channel, {"ref": request["ref"], "pid": pid})


def _request(message: bytes, fds: list[int]) -> dict[str, Any]:
    """The request in `message`, or ValueError."""
    try:
        request = json.loads(message)
        keys = ("ref", "name", "module", "args", "env", "cwd", "version")
        if not isinstance(request, dict) or any(key not in request for key in keys):
            raise ValueError("not a fork request")
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from exc
    if len(fds) != 1:
        raise ValueError("a fork request comes with one file descriptor, its output")
    return request


def _accept(
    listener: socket.socket, selector: selectors.BaseSelector, channels: list[socket.socket]
) -> None:
    channel, _ = listener.accept()
    creds = channel.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid():
        channel.close()
        return
    channels.append(channel)
    selector.register(channel, selectors.EVENT_READ)


def _report_ended(requested_by: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        channel = requested_by.pop(pid, None)
        if channel is not None and channel.fileno() >= 0:
            _send(channel, {"pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the run that asked has ended
        channel.send(json.dumps(message).encode())


def _become(request: dict[str, Any], fds: list[int], server_fds: list[int]) -> None:
    """In the forked process: leave the server behind, take the request's environment, working
    directory, output and name, and run its `main`. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in server_fds:
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        os.chdir(request["cwd"])
        (output,) = fds
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        name_process(request["name"])
        # `main` watches the run itself (watch_parent: the run is named in the environment).
        code = importlib.import_module(request["module"]).main(request["args"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        flush_and_exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
