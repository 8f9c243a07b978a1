"""Fault injection for the recovery tests (R1, R4): the one place `EXIGO_SYNC_FAULT` is read.

The flow calls `fault(point)` at named points; nothing happens unless the variable names that
point, so production runs pay one environment lookup per point.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAULT_POINTS = (
    "before_refresh", "after_refresh", "during_land", "before_dbt", "before_current", "after_dbt",
)  # fmt: skip


class InjectedFault(RuntimeError):
    """Raised on purpose at a named point of the flow (R1 crash tests)."""


def fault(point: str) -> None:
    """Act if `EXIGO_SYNC_FAULT` names this point. The one place the flow reads it.

    EXIGO_SYNC_FAULT_MODE: `raise` (default) an error; `exit` the process at once (no except or
    finally runs: the ledger and the lock row stay as they are); `pause`: touch the file named
    by EXIGO_SYNC_FAULT_MARKER and wait there until killed (the kill tests' "at this point");
    `hold`: touch the marker and wait until the file EXIGO_SYNC_FAULT_RELEASE exists, then go
    on (another consumer acts at this point: R3 tests).
    `before_current` is acted on by the dbt pre-hook of every current-state model, not here.
    """
    assert point in FAULT_POINTS, point
    if os.environ.get("EXIGO_SYNC_FAULT") != point:
        return
    mode = os.environ.get("EXIGO_SYNC_FAULT_MODE", "raise")
    if mode == "exit":
        os._exit(70)
    if mode == "pause":
        Path(os.environ["EXIGO_SYNC_FAULT_MARKER"]).touch()
        while True:
            time.sleep(0.1)
    if mode == "hold":
        Path(os.environ["EXIGO_SYNC_FAULT_MARKER"]).touch()
        release = Path(os.environ["EXIGO_SYNC_FAULT_RELEASE"])
        while not release.exists():
            time.sleep(0.05)
        return
    raise InjectedFault(f"injected fault at {point} (EXIGO_SYNC_FAULT)")
