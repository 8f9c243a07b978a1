"""W1: the overlap catches rows that land late, with real flow runs on the simulator. (A `since`
after the watermark, refused unless allow_gap, then resumed from W1:
test_flow_window_refusals.py.)"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.naming import column_name, entity_name
from exigo_sync.settings import REPO_ROOT
from exigo_sync.simulator import ActivityRates
from tests.flow.helpers import CLOCK_START, OVERLAP, SyncEnv, make_env, merge_models_only

LAG = timedelta(minutes=8)  # below the overlap: a default run must catch every late row
# Busy enough that an hour leaves several changes landing just after a refresh they predate.
LAGGED = ActivityRates(replication_lag=LAG).scaled(5.0)
TIMED = [name for name, t in REPLICATED_TABLES.items() if t.version_time_column is not None]
# S2 as configured in the dbt project (read, not copied, so the test follows the policy).
POLICY: dict[str, dict[str, str]] = yaml.safe_load(
    (REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text()
)["vars"]["exigo_sensitive_columns"]

Key = tuple[Any, ...]
Rows = dict[str, dict[Key, dict[str, Any]]]


def _key(table: str, row: dict[str, Any], *, source: bool) -> Key:
    names = REPLICATED_TABLES[table].key
    return tuple(row[k if source else column_name(k)] for k in names)


def _as_warehouse(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A dbo row as current-state should hold it: snake_case names, S2 applied."""
    out = {}
    for name, value in row.items():
        treatment = POLICY.get(table, {}).get(name, "keep")
        if treatment == "drop":
            continue
        if treatment == "mask" and value is not None:
            text = str(value)
            value = "****" if len(text) <= 4 else "****" + text[-4:]
        assert treatment in ("keep", "mask"), f"no oracle for {treatment!r} ({table}.{name})"
        out[column_name(name)] = value
    return out


def _dbo(env: SyncEnv) -> Rows:
    sim = env.sim
    return {t: {_key(t, r, source=True): r for r in sim.current_rows(t)} for t in TIMED}


def _current(warehouse: Path, table: str) -> dict[Key, dict[str, Any]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(f"SELECT * FROM exigo_current.{entity_name(table)}_current")
        names = [d[0] for d in cur.description or ()]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return {_key(table, r, source=False): r for r in rows}


def _not_in_current(warehouse: Path, table: str, rows: list[dict[str, Any]]) -> dict[Key, str]:
    """The dbo rows (PascalCase) whose state is not the live current-state row of their key."""
    current = _current(warehouse, table)
    out = {}
    for row in rows:
        key = _key(table, row, source=True)
        have = current.get(key)
        if have is None:
            out[key] = "missing"
        elif have["is_deleted"]:
            out[key] = "deleted"
        else:
            diff = [
                f"{c}: {v!r} != {have.get(c)!r}"
                for c, v in _as_warehouse(table, row).items()
                if have.get(c) != v
            ]
            if diff:
                out[key] = "; ".join(diff[:3])
    return out


def _t1_losses(env: SyncEnv, since: datetime) -> dict[str, dict[Key, str]]:
    """T1: every dbo row changed since `since`, per table, that current-state does not hold."""
    sim = env.sim
    return {
        t: _not_in_current(env.warehouse, t, sim.changed_since(t, since)) for t in REPLICATED_TABLES
    }


def test_w1_overlap_catches_rows_that_land_late(
    sync_env: SyncEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sync_env
    merge_models_only(monkeypatch)
    # A busy hour before batch 1 too: its snapshot's latest stamp, where the next window resumes
    # (W1: the earlier of the refresh start and that stamp), lies minutes before its refresh.
    env.sim.advance(timedelta(hours=1), LAGGED)
    env.run_ok()
    b1 = env.batches()[0]
    assert (b1["status"], b1["window_kind"]) == ("merged", "full")
    initial_start, refreshed = b1["requested_start"], b1["refresh_started_at"]
    watermark = b1["resume_at"]
    assert refreshed == CLOCK_START + timedelta(hours=1)
    assert refreshed - LAG < watermark <= refreshed, (watermark, refreshed)
    before = _dbo(env)  # dbo as batch 1 saw it (nothing happens between refresh and now)

    env.sim.advance(timedelta(hours=1), LAGGED)
    after = _dbo(env)
    # Late rows: changed (or new) after batch 1's refresh, yet dated before where it resumes.
    late = {
        t: {
            k: row
            for k, row in after[t].items()
            if row["ModifiedDate"] < watermark and before[t].get(k) != row
        }
        for t in TIMED
    }
    assert late["Orders"] or late["Customers"], "no late-landing order or customer: vacuous"
    for t in TIMED:
        for row in late[t].values():
            assert refreshed - LAG <= row["ModifiedDate"] < watermark, (t, row)

    # The contrast starts from the very same files: batch 1 merged, the same hour of activity.
    fork = tmp_path / "fork"
    fork.mkdir()
    shutil.copyfile(env.source, fork / env.source.name)
    shutil.copyfile(env.warehouse, fork / env.warehouse.name)

    # Default overlap: batch 2 resumes 10 minutes before batch 1's resume point (W1).
    env.run_ok()
    b2 = env.batches()[1]
    assert (b2["status"], b2["window_kind"]) == ("merged", "watermark")
    assert b2["requested_start"] == watermark - OVERLAP
    losses = _t1_losses(env, initial_start)
    assert not any(losses.values()), f"T1: rows lost with the default overlap: {losses}"
    for t in ("Orders", "Customers"):
        current = _current(env.warehouse, t)
        for k, row in late[t].items():
            assert current[k]["modified_date"] == row["ModifiedDate"], (t, k)

    # overlap_minutes=0 on the forked files: batch 2 resumes exactly at batch 1's resume point
    # and loses the late rows, and only them (the test above can fail).
    zero = make_env(tmp_path / "zero", None, monkeypatch)
    merge_models_only(monkeypatch)
    shutil.copyfile(fork / env.source.name, zero.source)
    shutil.copyfile(fork / env.warehouse.name, zero.warehouse)
    zero.run_ok(overlap_minutes=0)
    z2 = zero.batches()[1]
    assert (z2["status"], z2["window_kind"]) == ("merged", "watermark")
    assert z2["requested_start"] == watermark
    lost = _t1_losses(zero, initial_start)
    assert lost["Orders"] or lost["Customers"], "overlap 0 lost nothing"
    swept = {"Payments"}  # the default deletion sweep also brings in keys never received (W4)
    for t in TIMED:
        expected = set() if t in swept else set(late[t])
        assert set(lost[t]) == expected, f"{t}: lost {lost[t]}, late {set(late[t])}"
    assert {(order_id,) for order_id, _ in lost["OrderDetails"]} <= set(late["Orders"])
    # One concrete row: in dbo, dated before batch 1's resume point, landed after its refresh,
    # not merged.
    t = "Orders" if lost["Orders"] else "Customers"
    k = min(lost[t])
    assert late[t][k]["ModifiedDate"] < watermark and before[t].get(k) != late[t][k]
