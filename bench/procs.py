"""Run a command and measure it: wall time, its own max RSS (`wait4`), and the peak RSS of its
whole process tree (the sum over every live descendant, polled from /proc).

Polling can miss a peak shorter than the interval (50 ms); the per-process high-water marks come
from the kernel (`ru_maxrss`) and miss nothing, so the report gives both where they matter.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
POLL_SECONDS = 0.05


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(root: int) -> list[int]:
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@dataclass
class TreeSampler:
    """Polls the process tree under `root` until stopped."""

    root: int
    peak_tree_bytes: int = 0
    peak_by_pid: dict[int, int] = field(default_factory=dict)
    cmd_by_pid: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in tree(self.root):
                rss = rss_bytes(pid)
                total += rss
                if rss > self.peak_by_pid.get(pid, 0):
                    self.peak_by_pid[pid] = rss
                    if pid not in self.cmd_by_pid:
                        self.cmd_by_pid[pid] = cmdline(pid)
            self.peak_tree_bytes = max(self.peak_tree_bytes, total)
            self._stop.wait(POLL_SECONDS)

    def peak_matching(self, needle: str) -> int:
        """Highest polled RSS of a process whose command line contains `needle`."""
        return max(
            (b for pid, b in self.peak_by_pid.items() if needle in self.cmd_by_pid.get(pid, "")),
            default=0,
        )


@dataclass
class Measured:
    command: list[str]
    returncode: int
    wall_seconds: float
    maxrss_mb: float  # the process itself (kernel high-water mark)
    tree_peak_mb: float  # sum over the tree, polled
    processes: int  # distinct processes seen in the tree
    load_start: list[float]
    load_end: list[float]
    dbt_child_polled_mb: float = 0.0
    log: str = ""

    def check(self) -> Measured:
        if self.returncode != 0:
            raise RuntimeError(
                f"command failed with exit code {self.returncode}: {' '.join(self.command)}"
                f"\n--- last lines of {self.log} ---\n{_tail(Path(self.log))}"
            )
        return self


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def mb(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)


def _forget_parents_peak() -> None:
    """In the forked child, before exec: reset the high-water mark its memory map inherited
    from this process. Linux carries a forked process's peak RSS across exec into its own
    `ru_maxrss`, so a command started by a bench that had grown (comparing 10M-row tables)
    reported the bench's peak as its own. Only os calls: the fork of a threaded process."""
    fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    try:
        os.write(fd, b"5")
    finally:
        os.close(fd)


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    cwd: Path | None = None,
) -> Measured:
    """Run `command` to completion with its output in `log`; never raises on a failure (call
    `.check()`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load_start = loadavg()
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_forget_parents_peak,
        )  # fmt: skip
        sampler = TreeSampler(proc.pid).start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            sampler.stop()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        command=list(command),
        returncode=proc.returncode,
        wall_seconds=round(wall, 3),
        maxrss_mb=round(usage.ru_maxrss / 1024, 1),
        tree_peak_mb=mb(sampler.peak_tree_bytes),
        processes=len(sampler.peak_by_pid),
        load_start=load_start,
        load_end=loadavg(),
        dbt_child_polled_mb=mb(sampler.peak_matching("exigo_sync.child.dbt")),
        log=str(log),
    )


def children_maxrss_mb() -> float:
    """High-water mark of the largest child this process has waited for (Linux: KiB)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def self_maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
