"""Which batches merge the lookups (order statuses, order types, payment types, customer
statuses, customer types).

A lookup has no queue: every batch lands each one whole from `dbo`, and its staging, history and
current models compare it with what the warehouse holds. A lookup rarely changes, so in most
batches those 15 models and their 15 data tests find nothing, yet each is a dbt node a batch
pays for: a no-change batch's dbt step takes 0.78x as long without them (BENCHMARKS.md).

So a routine batch leaves them out when they cannot find anything: when the lookups it landed,
value for value (`landing.lookups_digest`), and what makes their models' SQL (the project, dbt's
version, the batch's vars: view_definitions.Definitions) are both what the last batch that merged
the lookups had. That batch left history and current state equal to those rows (C1), so merging
them again would add no version and change no row (H4). Anything else merges them:
- a lookup changed at the source (a renamed, added or removed value, a new column);
- a new project version or a changed var;
- a batch that died after it began merging them: it marks them `pending` before dbt runs, and
  only a merged batch replaces the mark;
- any other dbt selection (`run --select`, `EXIGO_SYNC_DBT_EXCLUDE` beyond data tests).

A batch that leaves them out is merged without their models (L2 counts only the entities it
merges); their rows, as every row of the warehouse, are then those the source holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exigo_sync.catalog import LOOKUP_ENTITY_NAMES, LOOKUPS_TAG
from exigo_sync.warehouse import landing

if TYPE_CHECKING:
    from exigo_sync.dbt_runner import BatchBuild
    from exigo_sync.view_definitions import Definitions
    from exigo_sync.warehouse.ledger import Ledger

# What a batch excludes from its dbt build to leave the lookups out: their models and every data
# test on them (the generated YAML tags each one).
LEAVE_LOOKUPS_OUT = f"tag:{LOOKUPS_TAG}"


@dataclass(frozen=True)
class LookupsPlan:
    """Whether a batch merges the lookups, and what it records once merged."""

    # Of the landed lookups with the definitions that merge them (None: not read, the build is
    # not routine).
    fingerprint: str | None
    merge: bool
    # Only a routine build (which merges every lookup) records its fingerprint once merged.
    records: bool

    def apply(self, build: BatchBuild) -> BatchBuild:
        """`build`, leaving the lookups out unless this batch merges them."""
        if self.merge:
            return build
        return build.leaving_out(LEAVE_LOOKUPS_OUT, unchanged_entities=LOOKUP_ENTITY_NAMES)

    def describe(self) -> str:
        if not self.merge:
            return "left out (every row as the last batch that merged them found it)"
        if self.records:
            return "merged (a lookup or what merges it may have changed)"
        return "merged if this batch's dbt selection reaches them"


def fingerprint(landed_digest: str, definitions: Definitions) -> str:
    """The landed lookups (landing.lookups_digest) with what makes their models' SQL."""
    return hashlib.sha256(f"{landed_digest}\n{definitions.digest}".encode()).hexdigest()


def plan_for_batch(
    ledger: Ledger, batch_id: int, build: BatchBuild, definitions: Definitions
) -> LookupsPlan:
    """Leave the lookups out when they and what merges them are as the last batch that merged
    them had them; otherwise mark them pending in the ledger before dbt runs. Only a routine
    build reads the landed lookups: any other merges them and records nothing."""
    if not build.routine:
        ledger.mark_pending(batch_id, "lookups")
        return LookupsPlan(None, merge=True, records=False)
    found = fingerprint(landing.lookups_digest(ledger.con), definitions)
    if found == ledger.last_fingerprint("lookups"):
        return LookupsPlan(found, merge=False, records=False)
    ledger.mark_pending(batch_id, "lookups")
    return LookupsPlan(found, merge=True, records=True)


def fingerprint_after_merge(plan: LookupsPlan) -> str | None:
    """What a merged batch records: the fingerprint of the lookups it merged, or None."""
    return plan.fingerprint if plan.records else None
