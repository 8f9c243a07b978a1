"""The deployments' entrypoint in a checkout: the `exigo-sync` flow itself lives in the package
(`exigo_sync.flow`), so a worker that installed exigo-sync runs the same flow
(`prefect.yaml`: `entrypoint: exigo_sync.flow:exigo_sync`)."""

from exigo_sync.flow import exigo_sync

__all__ = ["exigo_sync"]
