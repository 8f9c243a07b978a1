"""Entry points of the child processes a batch starts (`python -m exigo_sync.child.<name>`).

Each one first arranges to die with its parent (see exigo_sync.processes)."""
