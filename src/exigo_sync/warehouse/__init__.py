"""The warehouse side: connections (one module per engine), the batch ledger, the run lock and
the landing of queue snapshots copied from a source that lives elsewhere."""

from exigo_sync.warehouse.connection import (
    WarehouseBusy,
    WarehouseConnection,
    WarehouseError,
    connect,
    engine,
)

__all__ = ["WarehouseBusy", "WarehouseConnection", "WarehouseError", "connect", "engine"]
