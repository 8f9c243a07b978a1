"""Which batches recreate the warehouse's views (the marts).

A view holds no data: recreating it with the same definition changes nothing, yet each of the
nine mart views cost a batch a dbt node (its compile, its lock check, create, rename, drop,
commit): 0.94x of a no-change batch's dbt step without them (BENCHMARKS.md). So a routine batch
leaves them alone when their definition cannot have changed since a batch last created them, and
recreates them otherwise.

"Cannot have changed" is decided on what produces a view's SQL, compared with what the ledger
recorded when the views were last created by a merged batch:
- every file of the dbt project (models, macros, properties, dbt_project.yml with its vars),
- the versions of dbt and its adapter,
- the vars the flow hands dbt,
- the views the warehouse holds now (database, schema, name): one dropped by hand, or a
  warehouse file under a new name (DuckDB names its catalog after the file), differs.

The mart views select named columns, so a column appended to a table they read (B3) leaves them
valid. A batch that recreates them first records them as `pending` (a run that dies part-way
leaves that mark, and the next batch recreates them again); a merged batch records the
fingerprint of what it created. A batch run with another dbt selection never skips them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exigo_sync.dbt_runner import BatchBuild
    from exigo_sync.warehouse.ledger import Ledger

# The schemas dbt puts view models in (dbt_project.yml: marts).
VIEW_SCHEMAS = ("exigo_marts",)
# What a batch excludes from its dbt build to leave the views alone: every view model (their data
# tests still run, against the views as they are).
LEAVE_VIEWS_ALONE = "config.materialized:view"

_SKIPPED_FILES = (".pyc", ".DS_Store")


def _project_files(project_dir: Path, skipped_dirs: Iterable[Path]) -> list[Path]:
    skipped = {Path(d).resolve() for d in skipped_dirs}
    skipped |= {project_dir / "target", project_dir / "logs"}
    files = []
    for folder, subfolders, names in os.walk(project_dir):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if here / d not in skipped)
        files += [here / n for n in names if not n.endswith(_SKIPPED_FILES) and n != ".user.yml"]
    return sorted(files)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class Definitions:
    """What produces the views' SQL, digested; `fingerprint` adds the views a warehouse holds."""

    digest: str

    @classmethod
    def of_project(
        cls,
        project_dir: Path,
        *,
        adapter_type: str,
        dbt_vars: Mapping[str, object],
        skipped_dirs: Iterable[Path] = (),
    ) -> Definitions:
        project_dir = Path(project_dir).resolve()
        h = hashlib.sha256()
        for name in ("dbt-core", f"dbt-{adapter_type}"):
            h.update(f"{name}={_version(name)}\n".encode())
        h.update(json.dumps(dbt_vars, sort_keys=True, default=str).encode() + b"\n")
        for path in _project_files(project_dir, skipped_dirs):
            h.update(str(path.relative_to(project_dir)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
        return cls(h.hexdigest())

    def fingerprint(self, views: Iterable[tuple[str, str, str]]) -> str:
        """These definitions, with the views (database, schema, name) the warehouse holds."""
        h = hashlib.sha256(self.digest.encode())
        for view in sorted({tuple(str(part).lower() for part in v) for v in views}):
            h.update(("\0".join(view) + "\n").encode())
        return h.hexdigest()


@dataclass(frozen=True)
class ViewsPlan:
    """What a batch's dbt build does with the views, and what the batch records once merged."""

    definitions: Definitions
    recreate: bool
    # A merged batch records the fingerprint of the views it created: only a build of the
    # default selection, which creates every view.
    records: bool

    def apply(self, build: BatchBuild) -> BatchBuild:
        """`build`, leaving the views alone unless this batch recreates them. Their data tests
        still run, against the views as they are (BatchBuild.leaving_out)."""
        return build if self.recreate else build.leaving_out(LEAVE_VIEWS_ALONE)

    def describe(self) -> str:
        if not self.recreate:
            return "left as they are (as a merged batch created them)"
        if self.records:
            return "recreated (their definition may have changed)"
        return "recreated if this batch's dbt selection reaches them"


def plan_for_batch(ledger: Ledger, batch_id: int, build: BatchBuild) -> ViewsPlan:
    """Leave the views alone when nothing that makes them changed since the last batch that
    created them was merged; otherwise mark them pending in the ledger before dbt runs."""
    invocation = build.invocation
    definitions = Definitions.of_project(
        invocation.project_dir,
        adapter_type=ledger.con.engine,
        dbt_vars=build.dbt_vars(),
        skipped_dirs=(invocation.target_path, invocation.log_path),
    )
    default = build.routine
    unchanged = definitions.fingerprint(ledger.present_views(VIEW_SCHEMAS)) == (
        ledger.last_fingerprint("views")
    )
    if default and unchanged:
        return ViewsPlan(definitions, recreate=False, records=False)
    if not unchanged:
        ledger.mark_pending(batch_id, "views")
    return ViewsPlan(definitions, recreate=True, records=default)


def fingerprint_after_merge(ledger: Ledger, plan: ViewsPlan) -> str | None:
    """What a merged batch records: the fingerprint of the views it created, or None."""
    if not plan.records:
        return None
    return plan.definitions.fingerprint(ledger.present_views(VIEW_SCHEMAS))
