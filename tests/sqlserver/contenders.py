"""Lock contenders as separate processes, for the live R2 race (tests/sqlserver/
test_live_connections.py): each process makes the lock's one acquisition attempt
(`exigo_sync.warehouse.lock._try_acquire`) at the same instant as the others, round after round,
as concurrent batches of separate runs would. Processes, not threads: the lock tells its own
process's rows from other processes' by pid, so threads of one process are not rivals it is built
to separate (the in-process bookkeeping is a matter of the lock module itself).

Started with the `spawn` method (a fresh interpreter: no driver state inherited across fork); the
rounds are paced by a barrier the test process also waits on.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

ROUND_TIMEOUT = 120.0


def point_ledger_at(schema: str) -> None:
    """This process's ledger statements name `schema` (what tests/warehouse/engines.py
    `use_ledger_schema` does in the test process, without a monkeypatch)."""
    from exigo_sync.warehouse import ledger_sql

    prefix = f"{ledger_sql.SCHEMA}."
    for name, value in list(vars(ledger_sql).items()):
        if not (name.isupper() and isinstance(value, str)):
            continue
        if name == "SCHEMA":
            setattr(ledger_sql, name, schema)
        elif prefix in value:
            setattr(ledger_sql, name, value.replace(prefix, f"{schema}."))


def contend(
    config: dict[str, Any], schema: str, lock_name: str, rounds: int, stale_after_s: float,
    barrier: Any, results: Any,
) -> None:  # fmt: skip
    """Per round and phase (a free lock, then a dead holder's): wait at the barrier, make one
    attempt, report (round, phase, won or the error), wait at the barrier again."""
    from exigo_sync.profiles import Target
    from exigo_sync.warehouse.lock import _try_acquire

    point_ledger_at(schema)
    target = Target("live", "sqlserver", config)
    stale_after = timedelta(seconds=stale_after_s)
    for round_ in range(rounds):
        for phase in ("insert", "takeover"):
            barrier.wait(ROUND_TIMEOUT)
            try:
                won = _try_acquire(
                    target, f"{lock_name}-{round_}", uuid.uuid4().hex, f"run-{os.getpid()}",
                    stale_after,
                )[0]  # fmt: skip
                results.put((round_, phase, bool(won)))
            except BaseException as exc:
                results.put((round_, phase, f"{type(exc).__name__}: {exc}"))
            barrier.wait(ROUND_TIMEOUT)
