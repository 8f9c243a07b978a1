"""The warehouse side: connections (one module per engine), the batch ledger, the run lock, the
landing of queue snapshots copied from a source that lives elsewhere, and the analytics copy."""

from exigo_sync.warehouse.connection import WarehouseConnection, connect, connected, engine
from exigo_sync.warehouse.errors import WarehouseBusy, WarehouseError

__all__ = [
    "WarehouseBusy",
    "WarehouseConnection",
    "WarehouseError",
    "connect",
    "connected",
    "engine",
]
