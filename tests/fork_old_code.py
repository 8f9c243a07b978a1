"""A double for the fork server tests: preloaded by a fork server, it makes that server claim to
run an older exigo-sync (as `serve` started before an upgrade would)."""

import sys

sys.modules["__main__"].code_version = lambda: "exigo-sync 0.0.1, dbt-core 1.0.0"  # type: ignore[attr-defined]
