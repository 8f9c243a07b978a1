"""R4 for dbt's process (`python -m exigo_sync.child.dbt`, or forked by the run's fork server as
a batch's is): the run stops it with SIGTERM (`processes.stop_child`, then SIGKILL after 5 s)
while a model's statement runs, and the child cancels that statement itself, the way dbt does on
Ctrl-C (adapter.cancel_open_connections: DuckDB's interrupt(), SQLCancel on SQL Server), then
exits with the shell's code for the signal within the grace: the warehouse learns of the stop
from a cancel, not from a socket closing, and the parent never needs SIGKILL.

A tiny dbt project on a DuckDB file: one model whose pre-hook touches a marker file and whose
query never ends (the project's pause fault mode does the same). What this cannot show: a SQL
Server statement cancelled by dbt-sqlserver (same dbt path, another adapter: the live suite)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

import pytest
import yaml

from exigo_sync.processes import ForkedChild, ForkServer, spawn_child, stop_child

GRACE = 5.0  # processes.stop_child's default, what dbt_runner.run_dbt gives the child


def _project(tmp: Path) -> tuple[Path, Path, Path]:
    """A one-model DuckDB project; returns (project dir, profiles dir, marker file)."""
    project, marker = tmp / "project", tmp / "started.csv"
    (project / "models").mkdir(parents=True)
    config = {"name": "r4_stop", "version": "1.0", "profile": "r4_stop", "config-version": 2}
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    hook = f"copy (select 1 as started) to '{marker}' (format csv)"
    (project / "models" / "endless.sql").write_text(
        f'{{{{ config(materialized="table", pre_hook="{hook}") }}}}\n'
        "select sum(hash(i)) as s from range(1000000000000) t(i)\n"
    )
    profiles = tmp / "profiles"
    profiles.mkdir()
    output = {"type": "duckdb", "path": str(tmp / "wh.duckdb"), "threads": 1}
    profile = {"r4_stop": {"target": "dev", "outputs": {"dev": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
    return project, profiles, marker


def _start(
    tmp: Path, server: ForkServer | None = None
) -> tuple[subprocess.Popen[bytes] | ForkedChild, Path, Path]:
    """dbt's process, started as `python -m exigo_sync.child.dbt` or (server) forked by the
    fork server as a batch's is; its output in a file."""
    project, profiles, marker = _project(tmp)
    out = tmp / "dbt.jsonl"
    args = ["build", "--project-dir", str(project), "--profiles-dir", str(profiles),
            "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"),
            "--log-format", "json", "--no-use-colors"]  # fmt: skip
    proc: subprocess.Popen[bytes] | ForkedChild
    if server is None:
        with out.open("wb") as sink:
            proc = spawn_child("exigo_sync.child.dbt", args, stdout=sink, stderr=subprocess.STDOUT)
    else:
        proc = server.fork("exigo-sync-dbt", "exigo_sync.child.dbt", args)
        threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True).start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.monotonic() < deadline, "the model never started"
        time.sleep(0.1)
    time.sleep(0.5)  # the endless select is running now
    return proc, out, tmp / "logs" / "dbt.log"


def _drain(pipe: BinaryIO, out: Path) -> None:
    with out.open("wb") as sink:
        for line in pipe:
            sink.write(line)
            sink.flush()


def _events(out: Path) -> list[dict]:
    events = []
    for line in out.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line)["info"])
        except (ValueError, KeyError, TypeError):
            continue
    return events


@pytest.mark.parametrize(
    ("sig", "forked"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["sigterm", "sigint", "sigterm-forked"],
)
def test_r4_a_stopped_dbt_child_cancels_its_query_and_exits_within_the_grace(
    tmp_path: Path, sig: signal.Signals, forked: bool, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("dbt_fork_server") if forked else None
    proc, out, dbt_log = _start(tmp_path, server)
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        code = stop_child(proc, grace_seconds=0.1)
        pytest.fail(f"dbt's process was still running {GRACE}s after {sig.name} (killed)")
    seconds = time.monotonic() - started
    assert code == 128 + sig, (code, out.read_text()[-3000:])
    assert seconds < GRACE - 0.5, seconds
    events = _events(out)
    names = [e.get("name") for e in events]
    # dbt's own cancel path ran: it cancelled the model's connection (LogCancelLine) ...
    cancelled = [e["msg"] for e in events if e.get("name") == "LogCancelLine"]
    assert any("model.r4_stop.endless" in m for m in cancelled), (cancelled, names)
    # ... and DuckDB interrupted the statement (dbt-duckdb's cancel is cursor.interrupt()).
    text = out.read_text(errors="replace") + (dbt_log.read_text(errors="replace")
                                              if dbt_log.exists() else "")  # fmt: skip
    assert "INTERRUPT" in text.upper(), text[-3000:]


def test_r4_a_child_that_does_not_stop_is_ended_by_its_watchdog(tmp_path: Path) -> None:
    """Work that swallows the KeyboardInterrupt (a driver that never comes back) cannot keep
    the child past its watchdog: it exits with 143 before the parent's grace is over."""
    script = (
        "import time\n"
        "from exigo_sync.processes import cancel_on_term\n"
        "cancel_on_term(grace_seconds=1.0)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(60)\n"
        "    except KeyboardInterrupt:\n"
        "        print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(0.5)  # inside the loop's try now
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)  # a second stop is not a second interrupt
    try:
        code = proc.wait(timeout=GRACE)
    finally:
        stop_child(proc, grace_seconds=0.1)
    assert code == 143 and 0.9 < time.monotonic() - started < 3.0
    assert proc.stdout.read().count(b"interrupted") == 1
