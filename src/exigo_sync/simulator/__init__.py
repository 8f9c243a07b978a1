"""A DuckDB stand-in for an Exigo sync database: dbo truth tables, seeded set-based activity on
a simulated clock, `queue.Refresh` with the vendor's semantics, and a truth API for tests."""

from exigo_sync.simulator.activity import ACTIVITY_KINDS, ActivityRates, ActivitySummary
from exigo_sync.simulator.clocks import ClockModel
from exigo_sync.simulator.core import SimulatorError, SyncSimulator

__all__ = [
    "ACTIVITY_KINDS",
    "ActivityRates",
    "ActivitySummary",
    "ClockModel",
    "SimulatorError",
    "SyncSimulator",
]
