"""dbt in a child process of the run: `python -m exigo_sync.child.dbt build --select ...`.

A separate process is what lets a cancelled, timed-out or killed run stop dbt's queries: the
run ends this process, and the warehouse rolls back whatever statement was in flight.
"""

from __future__ import annotations

import sys

from exigo_sync.processes import exit_on_term, watch_parent


def main(argv: list[str]) -> int:
    watch_parent()
    exit_on_term()
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(argv)
    if result.success:
        return 0
    # dbt's own convention: 1 = a node failed, 2 = dbt could not run at all.
    return 2 if result.exception is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
