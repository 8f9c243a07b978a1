"""What can go wrong in the warehouse, whichever engine it runs on."""

from __future__ import annotations


class WarehouseError(RuntimeError):
    """The warehouse refused or failed a statement (message is secret-free)."""


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse (DuckDB allows one writer process), or the
    connection was lost or timed out; worth a retry."""
