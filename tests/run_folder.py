"""Files a pytest run builds once and every test process of the run (pytest-xdist workers) uses."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every test process of this pytest run shares (pytest-xdist gives each worker a
    base folder of its own inside the run's), and no other run."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]
) -> Path:
    """What `build(folder)` returns, built by the first test process of the run that asks; the
    others wait for it (a file lock) and use the same files, which tests only ever copy."""
    folder = run_folder(tmp_path_factory) / "built-once" / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    done = folder.with_name(f"{name}.built")
    with open(folder.with_name(f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            done.write_text(str(build(folder)))
    return Path(done.read_text())
