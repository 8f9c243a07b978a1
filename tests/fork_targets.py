"""What the fork server tests (tests/test_fork_server.py) ask the server to run:
`main(["report"])` prints what the forked process sees, `main(["sleep"])` waits to be stopped
(watching its run as a batch's dbt process does)."""

from __future__ import annotations

import json
import os
import sys
import time

from exigo_sync.processes import watch_parent


def main(args: list[str]) -> int:
    watch_parent()
    if args[0] == "report":
        with open(f"/proc/{os.getpid()}/comm") as comm:
            name = comm.read().strip()
        seen = {
            "setting": os.environ.get("EXIGO_SYNC_FORK_TEST"),
            "cwd": os.getcwd(),
            "name": name,
            "preloaded": "fractions" in sys.modules,
            "parent_pid": os.environ.get("EXIGO_SYNC_PARENT_PID"),
        }
        print(json.dumps(seen), flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        return int(args[1])
    print("sleeping", flush=True)
    time.sleep(600)
    return 0
