"""The analytics copy kept batch by batch (exigo_sync.warehouse.analytics_copy): after the first
two publications (one whole copy per slot) each publication applies the batches' changes to the
standby slot and moves the link. Proven on real warehouses built by the flow, with readers in
other processes:

- after several incremental publications the copy equals the warehouse (a fresh whole copy),
  relation by relation: history, current state, status changes, marts (views evaluated), ledger;
- a reader holding the copy open keeps reading one whole batch while the next publications run
  (also when a publication finds its slot still open: it then copies that slot whole under a new
  file) and sees the new batch once it reconnects;
- a schema change (a column added to a history table, a new mart view) makes the next
  publication copy the warehouse whole;
- a publication that fails part-way leaves the previous copy readable and the batch merged (a
  warning), and the next one publishes a copy equal to the warehouse.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exigo_sync.profiles import Target
from exigo_sync.warehouse import analytics_copy
from tests.flow.helpers import SyncEnv, advance, prefect_logs_and_artifacts, with_marts
from tests.flow.test_analytics_copy import assert_copy_equals_warehouse

# One answer per command; the connection stays open in between. `loop` queries without pause in
# a thread of its own until `stop`, which prints how many answers it got and every distinct one
# (a reader whose copy changed under it, or broke, would show two answers or an error).
READER = textwrap.dedent(
    """
    import sys, threading, duckdb
    path = sys.argv[1]
    con = duckdb.connect(path, read_only=True)
    QUERY = (
        "select (select max(batch_id) from exigo_sync.batches where status = 'merged'), "
        "(select count(*) from exigo_marts.fct_orders), "
        "(select count(*) from exigo_history.orders_history), "
        "(select count(*) from exigo_current.order_details_current)"
    )
    def answer(c):
        return " ".join(str(v) for v in c.execute(QUERY).fetchone())
    state = {"stop": False, "seen": set(), "n": 0, "error": None}
    def loop(cur):
        try:
            while not state["stop"]:
                state["seen"].add(answer(cur))
                state["n"] += 1
        except Exception as exc:
            state["error"] = repr(exc)
    thread = None
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "?":
            print(answer(con), flush=True)
        elif cmd == "reconnect":
            con.close()
            con = duckdb.connect(path, read_only=True)
            print(answer(con), flush=True)
        elif cmd == "loop":
            state.update(stop=False, seen=set(), n=0, error=None)
            thread = threading.Thread(target=loop, args=(con.cursor(),))
            thread.start()
            print("looping", flush=True)
        elif cmd == "stop":
            state["stop"] = True
            thread.join()
            print(state["n"], state["error"], "|".join(sorted(state["seen"])), flush=True)
    """
)


class Reader:
    def __init__(self, copy: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER, str(copy)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def ask(self, command: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        assert line, f"the reader died (exit {self.proc.poll()})"
        return line

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def answer_of(env: SyncEnv, copy: Path) -> str:
    """What the reader answers, from a fresh connection to `copy`."""
    con = duckdb.connect(str(copy), read_only=True)
    try:
        row = con.execute(
            "select (select max(batch_id) from exigo_sync.batches where status = 'merged'), "
            "(select count(*) from exigo_marts.fct_orders), "
            "(select count(*) from exigo_history.orders_history), "
            "(select count(*) from exigo_current.order_details_current)"
        ).fetchone()
        assert row is not None
        return " ".join(str(v) for v in row)
    finally:
        con.close()


def publications(copy: Path) -> list[str]:
    """How each publication to `copy` went, in order: 'whole: <why>' or 'applied'."""
    out = []
    for line in prefect_logs_and_artifacts().splitlines():
        if not line.startswith("analytics copy: ") or f"-> {copy} (slot" not in line:
            continue
        whole = re.search(r"copied whole: (.*)\)$", line)
        out.append(f"whole: {whole.group(1)}" if whole else "applied")
    return out


def batches(env: SyncEnv, n: int, hours: float = 3, **params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(n):
        advance(env, hours)
        out = env.run_ok(**params)
    return out


def copy_of(env: SyncEnv) -> Path:
    return env.warehouse.with_name("warehouse.analytics.duckdb")


@pytest.fixture(autouse=True)
def _marts_in_every_batch(sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy holds the analyst marts too: these batches build them."""
    with_marts(monkeypatch)


@pytest.mark.slow  # in `make test-slow` (five publications)
def test_a_copy_kept_batch_by_batch_equals_a_whole_copy(sync_env: SyncEnv) -> None:
    env = sync_env
    copy = copy_of(env)
    env.run_ok()  # the initial load: slot a, copied whole
    out = batches(env, 2)  # slot b copied whole, then slot a brought up to date
    assert out["analytics_copy"] == str(copy)
    assert_copy_equals_warehouse(env, copy)
    out = batches(env, 2, hours=6)
    out = env.run_ok(reconcile=True)  # the nightly reconciliation: deletions by sweep
    out = batches(env, 1)
    assert env.batches()[-1]["status"] == "merged"
    assert out["analytics_copy"] == str(copy)
    done = publications(copy)
    assert done[:2] == ["whole: no copy in this slot yet"] * 2, done
    assert done[2:] == ["applied"] * 5, done
    # Every table, every view's answer: equal to the warehouse, i.e. to a fresh whole copy.
    assert_copy_equals_warehouse(env, copy)
    # The history the batches changed (versions opened and closed) is in the copy.
    (closed,) = env.query(
        copy, "select count(*) from exigo_history.orders_history where batch_id > 2 "
        "or (valid_to is not null and batch_id <= 2)",
    )[0]  # fmt: skip
    assert closed > 0
    whole = tmp_whole_copy(env)
    try:
        assert_same_relations(copy, whole)
    finally:
        whole.unlink()
    assert not [p for p in copy.parent.rglob("*") if p.name.endswith((".tmp", ".wal"))]


def tmp_whole_copy(env: SyncEnv) -> Path:
    """A fresh whole copy of the warehouse, made by the same module into a new place."""
    dest = env.root / "fresh" / "fresh.duckdb"
    target = Target("duckdb", "duckdb", {"path": str(env.warehouse)})
    analytics_copy.publish(target, dest)
    return dest.resolve()


def assert_same_relations(a: Path, b: Path) -> None:
    from tests.flow.test_analytics_copy import relations

    left, right = relations(a), relations(b)
    assert set(left) == set(right)
    assert [n for n in left if left[n] != right[n]] == []


@pytest.mark.slow  # in `make test-slow` (a reader process across publications)
def test_a_reader_keeps_one_batch_while_publications_run(sync_env: SyncEnv) -> None:
    env = sync_env
    copy = copy_of(env)
    env.run_ok()
    batches(env, 2)  # a: whole, b: whole, a: applied -> the link points to a
    assert analytics_copy.current_slot(copy) == "a"
    reader = Reader(copy)
    try:
        first = reader.ask("?")
        assert first == answer_of(env, copy)
        assert reader.ask("loop") == "looping"
        out = batches(env, 1)  # b brought up to date while the reader queries a without pause
        assert out["analytics_copy"] == str(copy)
        assert analytics_copy.current_slot(copy) == "b"
        n, error, seen = reader.ask("stop").split(" ", 2)
        assert error == "None" and int(n) > 0
        assert seen == first  # every answer during the publication: the batch it opened
        assert reader.ask("?") == first
        after = answer_of(env, copy)
        assert after != first and after.split()[0] == str(out["batch_id"])
        # The reader still holds slot a: the next publication cannot write it, so it copies
        # the warehouse whole under a new file; the reader keeps its old file.
        assert reader.ask("loop") == "looping"
        out = batches(env, 1)
        n, error, seen = reader.ask("stop").split(" ", 2)
        assert error == "None" and int(n) > 0 and seen == first
        assert publications(copy)[-2:] == ["applied", "whole: a reader still has this slot open"]
        # Reconnecting gives the newest batch.
        assert reader.ask("reconnect") == answer_of(env, copy)
        assert reader.ask("?").split()[0] == str(out["batch_id"])
    finally:
        reader.close()
    assert_copy_equals_warehouse(env, copy)
    # And the slot the reader left is brought up to date by its changes again.
    batches(env, 1)
    assert publications(copy)[-1] == "applied"
    assert_copy_equals_warehouse(env, copy)


@pytest.mark.parametrize(
    "change",
    # A new mart view takes the same whole-copy path: in `make test-slow`.
    ["new history column", pytest.param("new mart view", marks=pytest.mark.slow)],
)
def test_a_schema_change_rebuilds_the_copy_whole(sync_env: SyncEnv, change: str) -> None:
    env = sync_env
    copy = copy_of(env)
    env.run_ok()
    batches(env, 2)
    assert publications(copy)[-1] == "applied"
    advance(env, 3)
    env.run_ok()
    con = duckdb.connect(str(env.warehouse))
    try:
        if change == "new history column":
            con.execute("alter table exigo_history.orders_history add column extra varchar")
            con.execute("update exigo_history.orders_history set extra = 'x' where is_current")
        else:
            con.execute(
                "create view exigo_marts.fct_new as "
                "select order_id from exigo_current.orders_current"
            )
    finally:
        con.close()
    target = Target("duckdb", "duckdb", {"path": str(env.warehouse)})
    records: list[str] = []

    class Capture:
        def info(self, msg: str, *args: object) -> None:
            records.append(msg % args)

    analytics_copy.publish(target, copy, Capture())  # type: ignore[arg-type]
    (message,) = records
    what = "column" if change == "new history column" else "view"
    name = "exigo_history.orders_history" if what == "column" else "exigo_marts.fct_new"
    assert f"copied whole: the schema changed ({what} {name} in the warehouse only)" in message
    assert_copy_equals_warehouse(env, copy)


def test_a_publication_that_fails_part_way_keeps_the_previous_copy(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sync_env
    copy = copy_of(env)
    env.run_ok()
    batches(env, 2)
    before = answer_of(env, copy)
    slot = analytics_copy.current_slot(copy)
    real = analytics_copy._apply_table
    applied: list[str] = []

    def failing(con: Any, wh: str, schema: str, table: str, *args: Any) -> int:
        if table == "orders_history":  # after several tables were written into the standby
            assert applied, "no table was applied before the failure"
            raise duckdb.IOException("No space left on device")
        applied.append(table)
        return real(con, wh, schema, table, *args)

    monkeypatch.setattr(analytics_copy, "_apply_table", failing)
    reader = Reader(copy)
    try:
        assert reader.ask("?") == before
        out = batches(env, 1)
        assert env.batches()[-1]["status"] == "merged"
        assert out["analytics_copy"] is None
        assert "analytics copy not published (batch merged all the same)" in (
            prefect_logs_and_artifacts()
        )
        # The link did not move: old and new readers read the previous batch, whole.
        assert analytics_copy.current_slot(copy) == slot
        assert reader.ask("?") == before
        assert answer_of(env, copy) == before
    finally:
        reader.close()
    monkeypatch.setattr(analytics_copy, "_apply_table", real)
    out = batches(env, 1)
    assert out["analytics_copy"] == str(copy)
    # The slot the failure touched has no record any more: copied whole, not trusted.
    assert publications(copy)[-1] == "whole: the slot's record is missing or unreadable"
    assert_copy_equals_warehouse(env, copy)
