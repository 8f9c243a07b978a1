"""dbt's saved parse (`partial_parse.msgpack`), handed from test to test within one test process.

Every test gives dbt a target folder of its own, so every test's first dbt invocation would parse
the project from scratch (about 10 s of CPU here), which a batch does once per target folder
(in production a warehouse's target folder keeps its parse from batch to batch).
Before a test runs dbt, its target folder gets the parse the last invocation with the same
inputs left; afterwards that parse is kept for the next test, in memory and in the test run's
shared folder (`share`), where the other pytest-xdist workers of the same run find it.

What dbt checks itself before it accepts a saved parse: the project's files, the --vars, the
profile and target names, the profile's rendered connection settings, the env vars the project
reads, and dbt's version; anything else makes it parse again, and a file it cannot read makes
it parse from scratch. What it does not check, the key does: the profiles.yml text, every
EXIGO_SYNC_* setting but RUNTIME_ONLY (a path by its file name: dbt-duckdb names a database
after its file), and what the caller adds (the vars, the project folder).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

PARSE_FILE = "partial_parse.msgpack"
# Settings that no parse reads: the run's lock, and the fault points (the project's macros read
# them only while executing, behind `execute`).
RUNTIME_ONLY = ("EXIGO_SYNC_LOCK_", "EXIGO_SYNC_FAULT")
_parses: dict[str, bytes] = {}
_shared: Path | None = None


def share(folder: Path) -> None:
    """Keep parses in `folder` too, for the other test processes of this run (never across
    runs: a run's folder is new, and a parse of other project files would only be parsed again)."""
    global _shared
    folder.mkdir(parents=True, exist_ok=True)
    _shared = folder


def key(profiles_dir: Path, *inputs: object, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    settings = sorted(
        (name, Path(value).name if "/" in value else value)
        for name, value in environ.items()
        if name.startswith("EXIGO_SYNC_") and not name.startswith(RUNTIME_ONLY)
    )
    profile = (Path(profiles_dir) / "profiles.yml").read_bytes()
    text = repr((settings, hashlib.sha256(profile).hexdigest(), inputs))
    return hashlib.sha256(text.encode()).hexdigest()


def seed(target_path: Path, cache_key: str) -> None:
    """Put the parse kept under `cache_key` (if any) in `target_path` for dbt to find."""
    parse = _parses.get(cache_key)
    if parse is None and _shared is not None and (_shared / cache_key).is_file():
        parse = _parses[cache_key] = (_shared / cache_key).read_bytes()
    if parse is not None:
        Path(target_path).mkdir(parents=True, exist_ok=True)
        (Path(target_path) / PARSE_FILE).write_bytes(parse)


def keep(target_path: Path, cache_key: str) -> None:
    """Keep the parse dbt left in `target_path` for the next invocation with `cache_key`."""
    path = Path(target_path) / PARSE_FILE
    if path.is_file():
        parse = _parses[cache_key] = path.read_bytes()
        if _shared is not None:
            # Written aside and renamed: another process reads a whole parse or none.
            aside = _shared / f".{cache_key}.{os.getpid()}"
            aside.write_bytes(parse)
            aside.replace(_shared / cache_key)


@contextmanager
def seeded(target_path: Path, cache_key: str) -> Iterator[None]:
    """dbt, run inside, starts from the parse kept under `cache_key` and leaves its own."""
    seed(target_path, cache_key)
    try:
        yield
    finally:
        keep(target_path, cache_key)
