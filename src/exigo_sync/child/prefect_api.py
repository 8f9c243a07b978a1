"""A private Prefect API server for one CLI process: uvicorn serving Prefect's app, exactly as
Prefect's own ephemeral server does, but ending when the CLI process ends, even on SIGKILL.

    python -m exigo_sync.child.prefect_api --port 8123
"""

from __future__ import annotations

import sys

from exigo_sync.processes import watch_parent


def main(argv: list[str]) -> None:
    watch_parent()
    import prefect
    import uvicorn

    uvicorn.main.main(
        args=[
            "--app-dir", str(prefect.__module_path__.parent),
            "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1",
            "--log-level", "error",
            "--lifespan", "on",
            *argv,
        ],
        prog_name="uvicorn",
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
