"""What the fork server tests (tests/test_fork_server.py) ask the server to run:
`main(["report", code])` prints what the forked process sees, `main(["sleep"])` waits to be
stopped (watching its run as a batch's dbt process does), `main(["grow", code])` holds 1 GiB
for a moment."""

from __future__ import annotations

import json
import os
import sys
import time

from exigo_sync.processes import watch_parent

GROWN_KB = 1024 * 1024  # what `grow` holds at its peak (1 GiB), in ru_maxrss's unit


def main(args: list[str]) -> int:
    watch_parent()
    if args[0] == "grow":
        held = bytearray(GROWN_KB * 1024)
        held[::4096] = b"x" * len(held[::4096])  # touched: resident, not just reserved
        return int(args[1])
    if args[0] == "report":
        with open(f"/proc/{os.getpid()}/comm") as comm:
            name = comm.read().strip()
        seen = {
            "setting": os.environ.get("EXIGO_SYNC_FORK_TEST"),
            "cwd": os.getcwd(),
            "name": name,
            "preloaded": "fractions" in sys.modules,
            "parent_pid": os.environ.get("EXIGO_SYNC_PARENT_PID"),
            "forked_by": os.getppid(),
        }
        print(json.dumps(seen), flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        return int(args[1])
    print("sleeping", flush=True)
    time.sleep(600)
    return 0
