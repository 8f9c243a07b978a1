"""Where the benchmark keeps its files, and the environment its processes run in.

<work>/cache/        simulators and warehouses, built once per size (resumable: an artifact
                     is written under a temporary name and renamed when complete)
<work>/results/      one JSON per measured figure (a rerun skips figures already measured)
<work>/slot/         the files a measured run works on: every run copies its starting state
                     here, at fixed paths, so dbt's partial parsing stays warm (the dbt
                     profile, and so its hash, names these paths)
<work>/snapshot_project/  the throw-away dbt project of the snapshot comparison
<work>/profiles/     profiles.yml (the repository's example profile, unchanged)
<work>/prefect-*/    PREFECT_HOME of the bench's Prefect server and of cold CLI runs
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = REPO_ROOT / "bench" / ".work"
VENV_BIN = Path(os.environ.get("BENCH_VENV_BIN", str(REPO_ROOT / ".venv" / "bin")))

# Inherited by every process the benchmark starts (as `make` exports them).
QUIET_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


@dataclass(frozen=True)
class Slot:
    """Fixed paths a measured run works on."""

    root: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def source(self) -> Path:
        return self.root / "source.duckdb"

    @property
    def dbt_target(self) -> Path:
        return self.root / "dbt-target"

    @property
    def dbt_logs(self) -> Path:
        return self.root / "dbt-logs"

    @property
    def run_results(self) -> Path:
        return self.dbt_target / "run_results.json"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def slot(self) -> Slot:
        return Slot(self.root / "slot")

    @property
    def snapshot_slot(self) -> Slot:
        return Slot(self.root / "snapshot-slot")

    @property
    def snapshot_project(self) -> Path:
        return self.root / "snapshot_project"

    def prefect_home(self, kind: str) -> Path:
        return self.root / f"prefect-{kind}"

    def setup(self) -> None:
        for d in (self.cache, self.results, self.logs, self.profiles, self.slot.root):
            d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / "profiles.example.yml", self.profiles / "profiles.yml")

    # --- environments ---------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("EXIGO_SYNC_", "PREFECT_API_URL", "DBT_"))
        }
        env.update(QUIET_ENV)
        return env

    def sync_env(
        self, slot: Slot, *, api_url: str | None, prefect_home: Path, **extra: str
    ) -> dict[str, str]:
        """What an operator would set for `exigo-sync run` on the slot's files."""
        env = self.base_env()
        env.update(
            {
                "EXIGO_SYNC_PROFILES_DIR": str(self.profiles),
                "EXIGO_SYNC_TARGET": "duckdb",
                "EXIGO_SYNC_SOURCE_PATH": str(slot.source),
                "EXIGO_SYNC_WAREHOUSE_PATH": str(slot.warehouse),
                "EXIGO_SYNC_DBT_TARGET_PATH": str(slot.dbt_target),
                "EXIGO_SYNC_DBT_LOG_PATH": str(slot.dbt_logs),
                "PREFECT_HOME": str(prefect_home),
            }
        )
        env.pop("PREFECT_API_URL", None)
        if api_url:
            env["PREFECT_API_URL"] = api_url
        env.update(extra)
        return env

    # --- results ----------------------------------------------------------------------------

    def result_path(self, key: str) -> Path:
        return self.results / (key.replace("/", "__") + ".json")

    def load_result(self, key: str) -> dict[str, Any] | None:
        path = self.result_path(key)
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def save_result(self, key: str, data: Mapping[str, Any]) -> None:
        path = self.result_path(key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
        tmp.replace(path)

    def all_results(self) -> dict[str, dict[str, Any]]:
        out = {}
        for path in sorted(self.results.glob("*.json")):
            out[path.stem.replace("__", "/")] = json.loads(path.read_text())
        return out


def remove_db(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(str(path) + ".wal").unlink(missing_ok=True)


def copy_db(src: Path, dst: Path) -> None:
    """Copy a closed DuckDB file (and refuse one with a pending WAL: not a clean state). The
    copy is fsynced: a measured run must not find gigabytes of the harness's own copying still
    waiting to be written (it slowed the fsync-bound analytics copy of a 10M-row batch); a
    batch 15 minutes after the last finds the disk idle."""
    if Path(str(src) + ".wal").exists():
        raise RuntimeError(f"{src} has a WAL file: it was not closed cleanly")
    remove_db(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".copying")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb+") as written:
        os.fsync(written.fileno())
    tmp.replace(dst)


def save_db(src: Path, dst: Path) -> None:
    """Keep a slot file as a cache artifact (atomically)."""
    copy_db(src, dst)


def file_mb(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 1) if path.exists() else 0.0
