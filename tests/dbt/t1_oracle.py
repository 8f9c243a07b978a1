"""The T1 oracle (see tests/dbt/test_t1_oracle.py): `cycles` batches of random activity on the
simulator, every current-state table compared with the source truth for every key and every
delivered row state looked up in history; co-located or landed."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.naming import column_name
from exigo_sync.simulator import SyncSimulator
from exigo_sync.simulator.rates import ActivityRates
from exigo_sync.window import FULL_LOAD_START
from tests.dbt.helpers import (
    DBT_THREADS_AS_SHIPPED,
    ENTITIES,
    PROJECT_DIR,
    SENSITIVE_POLICY,
    DbtEnv,
    apply_policy,
    failures,
    key_columns,
)

OVERLAP = timedelta(minutes=10)
# What a reconciliation run passes: every entity's keys compared with the source in every batch.
RECONCILE = {"exigo_deletion_sweep_entities": list(ENTITIES.values())}
# Physical deletions several times the (rare) defaults, so that every kind happens within a
# few simulated days of 300 customers whatever the random draw.
RATES = ActivityRates(
    customer_purges=0.25, order_deletes=0.4, account_deletes=0.25, site_deletes=0.25
)


def _key(table: str, row: dict[str, Any]) -> tuple:
    return tuple(row[k] for k in key_columns(table))


def _snapshot_states(sim: SyncSimulator) -> dict[str, dict[tuple, dict[str, Any]]]:
    """The rows the last refresh delivered, as the warehouse should hold them."""
    out = {}
    for table in ENTITIES:
        rows = [apply_policy(table, r) for r in sim.queue_rows(table)]
        out[table] = {_key(table, r): r for r in rows}
    return out


def _warehouse(
    env: DbtEnv, table: str, layer: str, where: str = "true"
) -> dict[tuple, list[dict[str, Any]]]:
    entity = ENTITIES[table]
    rows = env.query(f"select * from exigo_{layer}.{entity}_{layer} where {where}")
    out: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[_key(table, r)].append(r)
    return out


def _reopened_keys(env: DbtEnv, table: str) -> list[tuple]:
    """Keys whose history has a live version right after a deletion version."""
    entity, keys = ENTITIES[table], key_columns(table)
    join = " and ".join(f"d.{k} = h.{k}" for k in keys)
    rows = env.query(
        f"select {', '.join('h.' + k for k in keys)} from exigo_history.{entity}_history h "
        f"join exigo_history.{entity}_history d on {join} and d.valid_to = h.valid_from "
        "where d.is_deleted and not h.is_deleted"
    )
    return [tuple(r[k] for k in keys) for r in rows]


def _same(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [
        f"{c}: expected {v!r}, got {actual.get(c)!r}"
        for c, v in expected.items()
        if actual.get(c) != v
    ]


def _land(sim: SyncSimulator, env: DbtEnv, batch_id: int) -> None:
    """The landed topology's copy step, exactly as the flow runs it: the simulator read through
    its DB-API cursor, Arrow into the warehouse, swapped in with the batch id."""
    import logging

    from exigo_sync.policy import SensitivePolicy
    from exigo_sync.profiles import Target
    from exigo_sync.source.duckdb_client import DuckDbSourceClient
    from exigo_sync.warehouse.landing import land_batch, tables_for_batch

    warehouse = Target("duckdb", "duckdb", {"path": str(env.warehouse)})
    land_batch(
        DuckDbSourceClient(sim.path), "duckdb", warehouse, batch_id,
        tables_for_batch(list(ENTITIES.values())), logger=logging.getLogger("t1"),
        policy=SensitivePolicy.load(PROJECT_DIR),
    )  # fmt: skip


def run_t1_oracle(tmp_path, *, landed: bool, cycles: int) -> None:
    """The oracle: `cycles` batches of random activity; keys deleted earlier come back (a
    restore) two thirds of the way through and must reopen (H7)."""
    restore_at = cycles * 2 // 3
    # Every seventh cycle replays an earlier window; a short run replays in its last cycle.
    replays = {c for c in range(1, cycles) if c % 7 == 0} or {cycles - 1}
    rng = random.Random(20260105)
    sim = SyncSimulator.create(
        tmp_path / "exigo_source.duckdb",
        seed=11,
        customers=300,
        clock_start=datetime(2026, 1, 5),
        history_days=10,
    )
    env = DbtEnv(tmp_path, source_path=sim.path)
    initial_start = FULL_LOAD_START  # W1: the first batch loads everything
    starts: list[datetime] = []  # the explicit start of every batch, for replays
    watermark: datetime | None = None
    delivered: dict[str, dict[tuple, list[dict[str, Any]]]] = {
        t: defaultdict(list) for t in ENTITIES
    }
    seen_keys: dict[str, set[tuple]] = {t: set() for t in ENTITIES}
    last_delivery: dict[str, dict[tuple, dict[str, Any]]] = {t: {} for t in ENTITIES}
    batch_id = 0
    restored: dict[str, list[Any]] = {}
    checked: dict[str, int] = defaultdict(int)
    timings: dict[str, float] = defaultdict(float)

    def run_batch(start: datetime) -> None:
        nonlocal batch_id, watermark
        batch_id += 1
        res = sim.refresh(start)
        starts.append(start)
        for table, states in _snapshot_states(sim).items():
            last_delivery[table] = states
            for key, row in states.items():
                delivered[table][key].append(row)
                seen_keys[table].add(key)
        t = time.perf_counter()
        if landed:
            _land(sim, env, batch_id)
        out = env.fast_build(
            batch_id,
            res.refresh_started_at,
            extra_vars={**RECONCILE, **({"exigo_landed": True} if landed else {})},
            env=DBT_THREADS_AS_SHIPPED,
        )
        timings["dbt"] += time.perf_counter() - t
        assert out.success, f"batch {batch_id} failed: {failures(out)}"
        # W1: the next window starts where this merged batch's refresh began, minus the overlap.
        watermark = res.refresh_started_at

    def check(full: bool) -> None:
        t = time.perf_counter()
        _check(full)
        timings["check"] += time.perf_counter() - t

    def _check(full: bool) -> None:
        """full: every key seen so far against dbo, every state ever delivered against history.
        Otherwise (cheaper, between full checks): this batch's delivered rows against current.
        No activity happens between a refresh and its check, so the delivered rows ARE the
        source truth for their keys at check time."""
        for table in ENTITIES:
            if not full:
                first = key_columns(table)[0]
                ids = sorted({k[0] for k in last_delivery[table]}) or [-1]
                where = f"{first} in ({', '.join(str(i) for i in ids)})"
                current = _warehouse(env, table, "current", where)
                for key, row in last_delivery[table].items():
                    assert len(current.get(key, [])) == 1, f"C1: {table} {key} not in current"
                    assert not current[key][0]["is_deleted"], f"{table} {key} deleted here"
                    diff = _same(row, current[key][0])
                    assert not diff, f"T1: {table} {key} current differs from dbo: {diff[:5]}"
                    checked[table] += 1
                continue
            truth = {
                _key(table, r): r
                for r in map(lambda r: apply_policy(table, r), sim.current_rows(table))
            }
            current = _warehouse(env, table, "current")
            for key in seen_keys[table]:
                assert len(current.get(key, [])) == 1, f"C1: {table} {key} not once in current"
                row = current[key][0]
                if key in truth:
                    assert not row["is_deleted"], f"{table} {key} live at source, deleted here"
                    diff = _same(truth[key], row)
                    assert not diff, f"T1: {table} {key} current differs from dbo: {diff[:5]}"
                    checked[table] += 1
                else:
                    assert row["is_deleted"] and row["deleted_at"] is not None, (
                        f"H7: {table} {key} gone at source but not deleted in current"
                    )
                    checked[table + " deleted"] += 1
            history = _warehouse(env, table, "history")
            for key, states in delivered[table].items():
                versions = history.get(key, [])
                for state in states:
                    assert any(not _same(state, v) for v in versions if not v["is_deleted"]), (
                        f"T1: a delivered state of {table} {key} is not a version in history"
                    )
            # Every key at the source was delivered (the full load, then the queue) or was
            # reopened by the reconciliation (restored keys), and so compared above.
            missing = set(truth) - seen_keys[table] - set(_reopened_keys(env, table))
            assert not missing, f"T1: {table} keys at the source never reached the warehouse"
            # Checked once, right after the restore (the simulator may delete them again later).
            for key in restored.pop(table, []):
                assert key in truth and not current[key][0]["is_deleted"], (
                    f"H7: restored {table} {key} did not reopen"
                )
                assert key in _reopened_keys(env, table), f"H7: {table} {key} has no reopen"
                checked[table + " reopened"] += 1

    run_batch(initial_start)
    check(full=True)
    for cycle in range(1, cycles):
        # Keys deleted before the last batch: that batch's reconciliation recorded their deletion.
        recorded = {t: sim.deleted_keys(t) for t in ENTITIES} if cycle == restore_at else {}
        sim.advance(timedelta(hours=rng.choice([1, 2, 3, 4, 6])), RATES)
        if cycle == restore_at:
            for table in ENTITIES:
                keys = sim.restore_deleted(table, 1) if sim.deleted_keys(table) else []
                # A key deleted by this cycle's activity was never seen deleted: no reopen due.
                restored[table] = [
                    k if isinstance(k, tuple) else (k,) for k in keys if k in recorded[table]
                ]
        if cycle in replays:
            # Replay an earlier window twice (W2 + H4): the second adds and changes nothing.
            start = starts[max(0, len(starts) - 4)]
            run_batch(start)
            before = {
                t: env.query(f"select count(*) as n from exigo_history.{e}_history")[0]["n"]
                for t, e in ENTITIES.items()
            }
            run_batch(start)
            after = {
                t: env.query(f"select count(*) as n from exigo_history.{e}_history")[0]["n"]
                for t, e in ENTITIES.items()
            }
            assert before == after, f"H4: replaying the same window added versions {before} {after}"
        else:
            assert watermark is not None
            run_batch(watermark - OVERLAP)
        check(full=cycle % 5 == 0 or cycle == restore_at or cycle == cycles - 1)

    print(f"T1 oracle: {batch_id} batches, timings {dict(timings)}, compared {dict(checked)}")
    assert batch_id >= cycles
    # The run must have exercised every entity, changes, and both kinds of deletion.
    for table in ENTITIES:
        assert checked[table] > 0, f"no {table} rows were compared"
    for table in ENTITIES:
        assert checked[f"{table} deleted"] > 0, f"no {table} deletion was exercised"
    assert sum(checked[f"{t} reopened"] for t in ENTITIES) > 0, "no restored key was checked"
    multi = env.query(
        "select count(*) as n from (select customer_id from exigo_history.customers_history "
        "group by customer_id having count(*) > 1) t"
    )[0]["n"]
    assert multi > 0, "no customer got a second version"

    # S2: secrets never copied, identifiers masked.
    for table, policy in SENSITIVE_POLICY.items():
        entity = ENTITIES[table]
        cols = {
            r["column_name"]
            for r in env.query(
                "select column_name from information_schema.columns where table_name = ?",
                [f"{entity}_history"],
            )
        }
        for column, treatment in policy.items():
            name = column_name(column)
            if treatment == "drop":
                assert name not in cols, f"S2: {table}.{column} reached history"
            elif treatment == "mask":
                bad = env.query(
                    f"select count(*) as n from exigo_history.{entity}_history "
                    f"where {name} is not null and {name} not like '****%'"
                )[0]["n"]
                assert bad == 0, f"S2: unmasked {table}.{column} in history"
    assert REPLICATED_TABLES.keys() == ENTITIES.keys()
