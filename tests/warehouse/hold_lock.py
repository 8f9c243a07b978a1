"""A lock holder in a process of its own, for tests that need one elsewhere (another pid
namespace: "another container with the same hostname"):

    python -m tests.warehouse.hold_lock WAREHOUSE.duckdb LOCK_NAME MARKER RELEASE

takes the lock row of a DuckDB warehouse, touches MARKER, and holds the lock until the file
RELEASE exists."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

from exigo_sync.profiles import Target
from exigo_sync.warehouse.lock import warehouse_lock


def main(warehouse: str, name: str, marker: str, release: str) -> None:
    target = Target("duckdb", "duckdb", {"path": warehouse})
    with warehouse_lock(
        target, name, flow_run_id="holder-elsewhere", timeout=30, stale_after=timedelta(hours=1)
    ):
        Path(marker).touch()
        while not Path(release).exists():
            time.sleep(0.05)


if __name__ == "__main__":
    main(*sys.argv[1:5])
