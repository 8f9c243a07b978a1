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
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from exigo_sync.processes import ForkServer, fork_child, fork_server, stop_child
from tests.flow.cli_processes import assert_all_gone, running

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> ForkServer:
    monkeypatch.chdir(REPO)  # where `tests.fork_targets` can be imported from
    started = ForkServer(["fractions"])
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


RUN = textwrap.dedent(
    """
    import sys
    from exigo_sync.processes import ForkServer
    server = ForkServer(["fractions"])
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
         "server = ForkServer(['dbt.cli.main', 'dbt.adapters.duckdb'])\n"
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
