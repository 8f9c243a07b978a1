"""Real `exigo-sync run` processes for the kill / stop tests: start one, wait for it to reach a
point, signal it, and see what is left behind (processes, lock row, Prefect slot)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exigo_sync.settings import REPO_ROOT
from tests import parse_cache
from tests.flow.helpers import SyncEnv, flow_parse_key, table_diff

# Where a run can be stopped: before queue.Refresh (batch `refreshing`), after it (`refreshed`),
# inside dbt (a current-state model's pre-hook runs a query that never ends), and after dbt
# merged everything but before the ledger says so.
POINTS = ("before_refresh", "after_refresh", "before_current", "after_dbt")


@dataclass
class CliRun:
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"exigo-sync run (pid {self.pid}) still running after {timeout}s:\n"
                + self.output()[-3000:]
            ) from None

    def wait_for(self, marker: Path, timeout: float = 180) -> None:
        """Until the run reaches its paused fault point (it touches `marker`)."""
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the run ended (code {self.proc.returncode}) before reaching the fault "
                    f"point:\n{self.output()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no fault point after {timeout}s:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def wait_for_output(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never printed {text!r}:\n{self.output()[-3000:]}")
            time.sleep(0.1)


# A Prefect database already migrated to this Prefect's schema (`migrated_prefect_database`),
# put in each new PREFECT_HOME a CLI run starts its private API on: as the home of someone who
# ran exigo-sync before. Creating it from nothing costs ~8 s of CPU per home, as on a first run.
_migrated_prefect_db: Path | None = None


def migrated_prefect_database(folder: Path) -> Path:
    """Create Prefect's database in `folder` with Prefect's own migrations (a PREFECT_HOME)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PREFECT_SERVER"))
    }
    folder.mkdir(parents=True, exist_ok=True)
    create = (
        "import asyncio\n"
        "from prefect.server.database import provide_database_interface\n"
        "asyncio.run(provide_database_interface().create_db())\n"
    )
    subprocess.run(
        [sys.executable, "-c", create], env={**env, "PREFECT_HOME": str(folder)}, check=True
    )
    return folder / "prefect.db"


def seed_prefect_homes_with(database: Path) -> None:
    global _migrated_prefect_db
    _migrated_prefect_db = database


def start_cli(
    tmp: Path,
    label: str,
    *,
    prefect_home: Path,
    fault: str | None = None,
    extra_env: dict[str, str] | None = None,
    command: str = "run",
    cwd: Path = REPO_ROOT,
) -> tuple[CliRun, Path]:
    """`exigo-sync <command>` (`run`, `serve`) in its own process group (as a shell job would
    be), on the private Prefect API of `prefect_home`; with `fault`, its batch pauses there.
    Returns the process and the marker file it touches when it reaches the fault point."""
    marker = tmp / f"{label}.reached"
    if _migrated_prefect_db is not None and not (prefect_home / "prefect.db").exists():
        prefect_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_prefect_db, prefect_home / "prefect.db")
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), **(extra_env or {})}
    env.pop("PREFECT_API_URL", None)
    if fault:
        env |= {
            "EXIGO_SYNC_FAULT": fault,
            "EXIGO_SYNC_FAULT_MODE": "pause",
            "EXIGO_SYNC_FAULT_MARKER": str(marker),
        }
    if command in ("run", "serve") and "EXIGO_SYNC_DBT_TARGET_PATH" in env:
        # dbt starts from an earlier batch's parse (tests/parse_cache.py).
        profiles = Path(env["EXIGO_SYNC_PROFILES_DIR"])
        cache_key = flow_parse_key(profiles, {}, environ=env)
        parse_cache.seed(Path(env["EXIGO_SYNC_DBT_TARGET_PATH"]), cache_key)
    log = tmp / f"{label}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exigo_sync.cli", command],
            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    STARTED.append(proc)
    return CliRun(proc, log), marker


# Every `start_cli` process of the running test: killed with its process group at teardown
# (tests/flow/conftest.py), so a test that fails before it stops its run leaves nothing
# running, such as a batch paused in a query that never ends.
STARTED: list[subprocess.Popen[bytes]] = []


def kill_started() -> None:
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from 3 (state) on


def running(pid: int) -> bool:
    """Alive and not a zombie (PID 1 here may not reap orphans)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def dbt_processes(pids: set[int]) -> set[int]:
    """Those of `pids` that are a batch's dbt process (named so by the fork server)."""
    found = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "exigo-sync-dbt":
                found.add(pid)
        except OSError:
            continue
    return found


def signal_run(run: CliRun, sig: signal.Signals, *, group: bool) -> set[int]:
    """Send `sig` to the run (its whole process group, like a terminal or systemd, or its pid
    alone, like a Prefect worker cancelling it). Returns every process of the run."""
    family = {run.pid} | descendants(run.pid)
    if group:
        os.killpg(run.pid, sig)
    else:
        os.kill(run.pid, sig)
    return family


def assert_all_gone(pids: set[int], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (left := {p for p in pids if running(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left behind: {_describe(left)}"


def _describe(pids: set[int]) -> str:
    out = []
    for pid in sorted(pids):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:150]
        except OSError:
            cmd = "?"
        out.append(f"{pid}: {cmd}")
    return "; ".join(out)


def prefect_slots(prefect_home: Path) -> dict[str, int]:
    """active_slots of every global concurrency limit, read from the Prefect database the
    private API of `prefect_home` wrote (no server needs to be running)."""
    con = sqlite3.connect(prefect_home / "prefect.db")
    try:
        return dict(con.execute("SELECT name, active_slots FROM concurrency_limit_v2").fetchall())
    finally:
        con.close()


def finish_and_compare(env: SyncEnv, tmp: Path, home: Path, expected: Any) -> list[dict]:
    """A last, undisturbed run: it must merge, leave the tables an uninterrupted batch leaves
    (R1), and leave both locks free."""
    final, _ = start_cli(tmp, "final", prefect_home=home)
    code = final.wait(timeout=240)
    assert code == 0, final.output()[-3000:]
    assert "merged" in final.output()
    diff = table_diff(env.snapshot(), expected)
    assert not diff, diff
    assert set(prefect_slots(home).values()) == {0}, prefect_slots(home)
    assert env.query(env.warehouse, "SELECT count(*) FROM exigo_sync.run_lock") == [(0,)]
    return env.batches()
