"""The run's fork server (exigo_sync.processes.ForkServer, exigo_sync.child.fork_server), which
forks each batch's dbt process from a process that imported dbt once. A forked process must
behave as the child process it replaces: the caller's environment and working directory as they
are at the fork (not the server's), its own name, its output on one pipe, its exit code, and
nothing left running when the run dies (R1). The R4 stop of a forked dbt process is proven in
tests/test_dbt_child_stop.py; a batch's, in tests/flow."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exigo_sync.processes import (
    FORK_SERVER_ENV,
    ForkRefused,
    ForkServer,
    fork_child,
    fork_server,
    stop_child,
    stop_fork_server,
)
from tests.flow.cli_processes import assert_all_gone, running
from tests.fork_targets import GROWN_KB, PREPARE_FROM_ENV

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> ForkServer:
    monkeypatch.chdir(REPO)  # where `tests.fork_targets` can be imported from
    started = ForkServer.start(["fractions"])
    yield started
    started.close()
    stop_child(started.process, grace_seconds=2)


def test_a_forked_process_has_the_callers_environment_directory_and_its_own_name(
    server: ForkServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXIGO_SYNC_FORK_TEST", "set after the server started")
    child = server.fork("exigo-sync-test", "tests.fork_targets", ["report", "3"], cwd=tmp_path)
    output = child.stdout.read().decode().splitlines()
    assert child.wait(timeout=10) == 3
    seen = json.loads(output[0])
    assert seen == {
        "setting": "set after the server started",
        "cwd": str(tmp_path),
        "name": "exigo-sync-test",
        "preloaded": True,  # imported by the server, before the fork
        "parent_pid": str(os.getpid()),  # the run it watches, not the server
        "forked_by": server.process.pid,
    }
    assert output[1:] == ["to stderr"]
    again = server.fork("exigo-sync-test", "tests.fork_targets", ["report", "0"], env={})
    assert json.loads(again.stdout.readline())["setting"] is None
    assert again.wait(timeout=10) == 0


def test_a_forked_process_is_stopped_like_a_child(server: ForkServer) -> None:
    child = server.fork("exigo-sync-test", "tests.fork_targets", ["sleep"])
    assert child.stdout.readline().strip() == b"sleeping"
    assert child.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.2)
    assert stop_child(child) == -signal.SIGTERM
    assert not running(child.pid)


def test_a_forked_process_whose_server_died_ends_with_an_unknown_code(
    server: ForkServer,
) -> None:
    child = server.fork("exigo-sync-test", "tests.fork_targets", ["sleep"])
    assert child.stdout.readline().strip() == b"sleeping"
    server.process.kill()
    server.process.wait()
    assert child.poll() is None  # still running: its server is not its life
    child.kill()
    assert child.wait(timeout=10) == 255  # nobody is left to say how it ended
    with pytest.raises(OSError):
        server.fork("exigo-sync-test", "tests.fork_targets", ["report", "0"])


def test_the_runs_fork_server_is_started_again_when_it_has_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    first = fork_server(["fractions"])
    first.process.kill()
    first.process.wait()
    child = fork_child("exigo-sync-test", "tests.fork_targets", ["report", "0"],
                       preload=["fractions"])  # fmt: skip
    assert json.loads(child.stdout.readline())["name"] == "exigo-sync-test"
    assert child.wait(timeout=10) == 0
    assert fork_server(["fractions"]) is not first


def _prepared_by(server: ForkServer) -> list[str]:
    """What `server` prepared (tests.fork_targets.prepare_fork_server), as a forked process
    finds it."""
    child = server.fork("exigo-sync-test", "tests.fork_targets", ["prepared"])
    seen = json.loads(child.stdout.readline())
    assert child.wait(timeout=10) == 0
    return seen


@pytest.fixture
def preparing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str | None], ForkServer]]:
    """Start a server that preloads tests.fork_targets, which prepares from a file holding the
    text given (None: no file yet)."""
    monkeypatch.chdir(REPO)
    started: list[ForkServer] = []

    def start(text: str | None) -> ForkServer:
        source = tmp_path / "prepare"
        if text is not None:
            source.write_text(text)
        started.append(
            ForkServer.start(["tests.fork_targets"], env={PREPARE_FROM_ENV: str(source)})
        )
        return started[-1]

    yield start
    for server in started:
        server.close()
        stop_child(server.process, grace_seconds=2)


def test_what_a_server_prepared_before_forking_is_in_every_process_it_forks(
    preparing: Callable[[str | None], ForkServer],
) -> None:
    server = preparing("compiled ahead")
    assert _prepared_by(server) == ["compiled ahead"]
    assert _prepared_by(server) == ["compiled ahead"]  # once, for all of them


def test_a_server_with_nothing_to_prepare_from_yet_prepares_once_idle(
    preparing: Callable[[str | None], ForkServer], tmp_path: Path
) -> None:
    server = preparing(None)
    first = server.fork("exigo-sync-test", "tests.fork_targets", ["sleep"])
    assert first.stdout.readline().strip() == b"sleeping"  # forked: the server tried already
    (tmp_path / "prepare").write_text("compiled after the first batch")
    stop_child(first)  # the server is idle again
    assert _prepared_by(server) == ["nothing to prepare from", "compiled after the first batch"]


def test_a_request_stops_a_preparation_and_it_goes_on_when_idle(
    preparing: Callable[[str | None], ForkServer],
) -> None:
    """A batch waits for no preparation: its request ends it (tried again when idle)."""
    server = preparing("until interrupted")
    assert _prepared_by(server) == ["interrupted by a request"]
    assert _prepared_by(server) == ["interrupted by a request"] * 2


RUN = textwrap.dedent(
    """
    import sys
    from exigo_sync.processes import ForkServer
    server = ForkServer.start(["fractions"])
    child = server.fork("exigo-sync-test", "tests.fork_targets", ["sleep"])
    child.stdout.readline()
    print(server.process.pid, child.pid, flush=True)
    sys.stdin.read()
    """
)


def test_r1_a_killed_run_leaves_neither_its_server_nor_what_it_forked() -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", RUN], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert run.stdout is not None
        server_pid, child_pid = (int(p) for p in run.stdout.readline().split())
        assert running(server_pid) and running(child_pid)
        time.sleep(0.5)
        run.kill()
        run.wait()
        assert_all_gone({server_pid, child_pid}, within=5)
    finally:
        run.kill()


def test_r1_a_run_killed_while_its_server_imports_leaves_nothing() -> None:
    """A stop soon after the run starts finds the server still importing dbt (seconds): it
    ends all the same, at once."""
    run = subprocess.Popen(
        [sys.executable, "-c",
         "from exigo_sync.processes import ForkServer\n"
         "server = ForkServer.start(['dbt.cli.main', 'dbt.adapters.duckdb'])\n"
         "print(server.process.pid, flush=True)\n"
         "input()\n"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert run.stdout is not None
        server_pid = int(run.stdout.readline())
        time.sleep(0.3)  # importing dbt now
        assert running(server_pid)
        run.kill()
        run.wait()
        assert_all_gone({server_pid}, within=1)
    finally:
        run.kill()


def test_stopping_the_runs_fork_server_hands_on_what_its_processes_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bench reads the dbt processes' memory from this process's reaped children: a server
    stopped and reaped passes on the high-water mark of the processes it forked."""
    import resource

    monkeypatch.chdir(REPO)
    stop_fork_server()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert before < GROWN_KB  # else the check below would prove nothing
    child = fork_child("exigo-sync-test", "tests.fork_targets", ["grow", "0"],
                       preload=["fractions"])  # fmt: skip
    assert child.wait(timeout=20) == 0
    stop_fork_server()
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert after >= GROWN_KB, (before, after)


SERVED_RUN = textwrap.dedent(
    """
    import json, os, sys
    from exigo_sync.processes import FORK_SERVER_ENV, fork_child
    child = fork_child("exigo-sync-test", "tests.fork_targets", ["report", "5"],
                       preload=["fractions"])
    seen = json.loads(child.stdout.readline())
    print(json.dumps({"code": child.wait(10), "parent_pid": seen["parent_pid"],
                      "me": os.getpid(), "forked_by": seen["forked_by"]}), flush=True)
    """
)


def test_a_shared_server_forks_for_the_processes_its_owner_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`serve` shares its server with the flow runs it starts (processes of their own, which
    find it in their environment): their processes are forked warm by it, watch the run that
    asked, and that run learns their exit code."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv(FORK_SERVER_ENV, raising=False)
    shared = ForkServer.start(["fractions"], share=True)
    try:
        assert shared.process is not None and shared.address is not None
        env = {**os.environ, FORK_SERVER_ENV: shared.address}
        out = subprocess.run([sys.executable, "-c", SERVED_RUN], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        seen = json.loads(out.stdout)
        assert seen["forked_by"] == shared.process.pid  # not a server of the run's own
        assert seen["parent_pid"] == str(seen["me"])  # it watches the run that asked
        assert seen["code"] == 5
    finally:
        shared.close()
        stop_child(shared.process, grace_seconds=2)
    assert not Path(shared.address).parent.exists()
    # Once its owner has ended, a run starts a server of its own.
    env = {**os.environ, FORK_SERVER_ENV: shared.address}
    out = subprocess.run([sys.executable, "-c", SERVED_RUN], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["forked_by"] != shared.process.pid


def test_another_user_cannot_fork_through_a_shared_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its directory keeps other users out; should its permissions be opened, the server
    still refuses them (it checks the peer's credentials)."""
    if os.getuid() != 0:
        pytest.skip("needs root, to act as another user")
    monkeypatch.chdir(REPO)
    shared = ForkServer.start(["fractions"], share=True)
    assert shared.process is not None and shared.address is not None
    attempt = textwrap.dedent(
        f"""
        import os
        from exigo_sync.processes import ForkServer, code_version
        code_version()  # read while the installation is readable
        os.setgid(65534)
        os.setuid(65534)
        try:
            ForkServer.connect({shared.address!r}).fork("x", "tests.fork_targets", ["sleep"])
        except OSError as exc:
            print("refused", type(exc).__name__)
        else:
            print("forked")
        """
    )

    def as_nobody() -> str:
        out = subprocess.run([sys.executable, "-c", attempt], cwd="/", capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        return out.stdout.strip() or out.stderr[-2000:]

    try:
        assert as_nobody() == "refused PermissionError"  # the directory
        Path(shared.address).parent.chmod(0o755)
        Path(shared.address).chmod(0o777)
        # Now the server itself: it hangs up (the fork finds the socket closed or reset).
        refused = as_nobody()
        assert refused.startswith("refused ") and refused != "refused PermissionError", refused
    finally:
        shared.close()
        stop_child(shared.process, grace_seconds=2)


def test_a_run_of_other_code_than_the_shared_server_forks_from_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """exigo-sync upgraded while serve runs: serve's server holds the old code; a flow run of
    the new code is refused, naming both, and forks from a server of its own."""
    monkeypatch.chdir(REPO)
    shared = ForkServer.start(["fractions", "tests.fork_old_code"], share=True)
    try:
        assert shared.process is not None and shared.address is not None
        with pytest.raises(ForkRefused, match=r"runs exigo-sync 0\.0\.1.*the run, exigo-sync"):
            ForkServer.connect(shared.address).fork("x", "tests.fork_targets", ["report", "0"])
        env = {**os.environ, FORK_SERVER_ENV: shared.address}
        out = subprocess.run([sys.executable, "-c", SERVED_RUN], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        seen = json.loads(out.stdout)
        assert seen["forked_by"] != shared.process.pid and seen["code"] == 5
    finally:
        shared.close()
        stop_child(shared.process, grace_seconds=2)


def test_a_shared_server_hangs_up_on_what_is_not_a_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    shared = ForkServer.start(["fractions"], share=True)
    try:
        assert shared.address is not None
        stranger = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stranger.connect(shared.address)
        stranger.send(b"GET / HTTP/1.0")
        stranger.settimeout(10)
        assert stranger.recv(100) == b""  # hung up
        stranger.close()
        child = ForkServer.connect(shared.address).fork(
            "exigo-sync-test", "tests.fork_targets", ["report", "0"]
        )
        assert json.loads(child.stdout.readline())["name"] == "exigo-sync-test"
        assert child.wait(timeout=10) == 0
    finally:
        shared.close()
        stop_child(shared.process, grace_seconds=2)
