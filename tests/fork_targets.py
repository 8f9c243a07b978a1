"""What the fork server tests (tests/test_fork_server.py) ask the server to run:
`main(["report", code])` prints what the forked process sees, `main(["sleep"])` waits to be
stopped (watching its run as a batch's dbt process does), `main(["grow", code])` holds 1 GiB
for a moment, `main(["prepared"])` prints what the server prepared before forking it
(`prepare_fork_server`, when the server preloaded this module), `main(["templates", path])` how
many macros of a dbt manifest dbt's template cache holds."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from exigo_sync.processes import watch_parent

GROWN_KB = 1024 * 1024  # what `grow` holds at its peak (1 GiB), in ru_maxrss's unit

# What `prepare_fork_server` prepares from: a file, whose text it keeps; "until interrupted":
# it works until a request arrives.
PREPARE_FROM_ENV = "EXIGO_SYNC_FORK_TEST_PREPARE_FROM"
prepared: list[str] = []  # what each preparation in the server left, in order


def prepare_fork_server(waiting: Callable[[], bool]) -> bool:
    source = Path(os.environ[PREPARE_FROM_ENV])
    if not source.exists():
        prepared.append("nothing to prepare from")
        return False
    text = source.read_text()
    if text == "until interrupted":
        deadline = time.monotonic() + 60
        while not waiting():
            if time.monotonic() > deadline:
                prepared.append("never interrupted")
                return False
            time.sleep(0.01)
        prepared.append("interrupted by a request")
        return False
    prepared.append(text)
    return True


def main(args: list[str]) -> int:
    watch_parent()
    if args[0] == "grow":
        held = bytearray(GROWN_KB * 1024)
        held[::4096] = b"x" * len(held[::4096])  # touched: resident, not just reserved
        return int(args[1])
    if args[0] == "prepared":
        print(json.dumps(prepared), flush=True)
        return 0
    if args[0] == "templates":  # how many macros of the manifest at args[1] are compiled
        print(json.dumps(_compiled_macros(Path(args[1]))), flush=True)
        return 0
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


def _compiled_macros(manifest_path: Path) -> dict[str, int]:
    """Of the macros in a dbt parse's manifest, how many dbt's template cache holds already."""
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder
    from dbt_common.clients.jinja import template_cache

    manifest = Manifest.from_msgpack(manifest_path.read_bytes(), decoder=extended_mashumuro_decoder)
    macros = list(manifest.macros.values())
    compiled = [m for m in macros if m.macro_sql in template_cache.file_cache]
    return {"macros": len(macros), "compiled": len(compiled)}
