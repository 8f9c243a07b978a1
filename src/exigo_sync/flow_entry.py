"""Load the `exigo-sync` flow from `flows/` the way a Prefect deployment does.

`flows/` sits beside the package (it is the deployments' entrypoint), so the CLI and the tests
load it through Prefect's own entrypoint loader instead of importing it as a package.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from exigo_sync.settings import REPO_ROOT

ENTRYPOINT = "flows/exigo_sync_flow.py:exigo_sync"


@cache
def load_flow() -> Any:
    from prefect.flows import load_flow_from_entrypoint

    path, name = ENTRYPOINT.split(":")
    return load_flow_from_entrypoint(f"{REPO_ROOT / path}:{name}")
