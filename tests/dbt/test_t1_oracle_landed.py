"""T1 in the landed topology: the same oracle as test_t1_oracle.py, with every batch's snapshot
copied into the warehouse's landing schemas the way the flow copies it (DB-API cursor -> Arrow
-> DuckDB) and dbt reading only that copy. Its own file so the two oracles run in parallel."""

from __future__ import annotations

import os

import pytest

from tests.dbt.t1_oracle import run_t1_oracle

CYCLES = int(os.environ.get("EXIGO_T1_LANDED_CYCLES", "10"))


@pytest.mark.slow
def test_t1_landed_current_equals_truth_and_history_holds_every_delivered_state(tmp_path):
    run_t1_oracle(tmp_path, landed=True, cycles=CYCLES)
