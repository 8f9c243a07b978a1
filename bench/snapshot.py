"""The usual dbt alternative: `dbt snapshot` of the six full source tables, in a throw-away dbt
project generated under the bench's work dir (never in dbt_project/).

Timestamp strategy on ModifiedDate; OrderDetails has no timestamp, so the check strategy on all
columns. `hard_deletes` is left at dbt's default (`ignore`): the cheapest configuration, so the
comparison flatters the snapshot (exigo-sync records deletions; a snapshot set to `invalidate`
would have to anti-join every source table with the snapshot as well).
"""

from __future__ import annotations

from pathlib import Path

from exigo_sync.catalog import REPLICATED_TABLES

PROJECT = """name: exigo_bench_snapshots
version: "1.0.0"
config-version: 2
profile: exigo_bench_snapshots
snapshot-paths: ["snapshots"]
model-paths: ["models"]
flags:
  send_anonymous_usage_stats: false
  partial_parse: true
"""

# The same DuckDB settings as the exigo-sync demo target (threads: 1, the source attached
# read-only as `exigo`).
PROFILES = """exigo_bench_snapshots:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{warehouse}"
      threads: 1
      attach:
        - path: "{source}"
          alias: exigo
          read_only: true
"""


def snapshots_yaml() -> str:
    lines = [
        "sources:",
        "  - name: exigo_dbo",
        "    database: exigo",
        "    schema: dbo",
        "    tables:",
    ]
    lines += [f"      - name: {name}" for name in REPLICATED_TABLES]
    lines += ["", "snapshots:"]
    for name, table in REPLICATED_TABLES.items():
        keys = list(table.key)
        key = keys[0] if len(keys) == 1 else "[" + ", ".join(keys) + "]"
        lines += [
            f"  - name: snap_{name.lower()}",
            f"    relation: source('exigo_dbo', '{name}')",
            "    config:",
            "      schema: snapshots",
            f"      unique_key: {key}",
        ]
        if table.version_time_column:
            lines += [
                "      strategy: timestamp",
                f"      updated_at: {table.version_time_column}",
            ]
        else:
            lines += ["      strategy: check", "      check_cols: all"]
    return "\n".join(lines) + "\n"


def write_project(root: Path, *, warehouse: Path, source: Path) -> Path:
    """(Re)write the project; returns its profiles dir. Paths are fixed per bench work dir."""
    (root / "snapshots").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    (root / "profiles").mkdir(exist_ok=True)
    _write(root / "dbt_project.yml", PROJECT)
    _write(root / "snapshots" / "snapshots.yml", snapshots_yaml())
    _write(
        root / "profiles" / "profiles.yml",
        PROFILES.format(warehouse=warehouse, source=source),
    )
    return root / "profiles"


def _write(path: Path, text: str) -> None:
    # Unchanged files keep their mtime, so dbt's partial parsing stays warm across bench runs.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
