"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium (the Makefile installs
it), driven by Playwright, which never downloads a browser here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# The network here is closed: without the background-networking flags Chromium stalls on refused
# connections. No sandbox: the tests run as root.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium() -> Path:
    """Debian's chromium. As root the Makefile installs it, so there a missing one is a failure."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() == 0:
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (as root it installs chromium)")
    pytest.skip(f"{CHROMIUM} is missing and only root can install it (make system-deps)")
