"""Reproducible sampling for the activity generator: how many events, and which rows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import duckdb

from exigo_sync.simulator.db import execute, scalar


def count_rows(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(scalar(con, sql))


def event_count(
    con: duckdb.DuckDBPyConnection, p: Mapping[str, Any], kind: str, rate: float
) -> int:
    """How many `kind` events this sub-step: rate x hours, with the fraction rounded up or down
    by a hashed draw so the long-run average is right and the result is reproducible."""
    expected = rate * p["span_us"] / 3600e6
    row = con.execute("SELECT rnd(?, ?, 0, ?)", [p["seed"], p["step"], "n:" + kind]).fetchone()
    draw = row[0] if row else 0.0
    return math.floor(expected + draw)


def pick(
    con: duckdb.DuckDBPyConnection,
    p: Mapping[str, Any],
    name: str,
    select_sql: str,
    key: str,
    k: int,
) -> int:
    """Temp table `name` = k rows of `select_sql` chosen by hash (not random(): reproducible),
    each with an event time T in [t0, t1)."""
    execute(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT s.*, rtime($seed, $step, s.{key}, '{name}:t', $t0, $span_us) AS T
        FROM ({select_sql}) s
        ORDER BY mix($seed, $step, s.{key}, '{name}'), s.{key}
        LIMIT $k
        """,
        {**p, "k": k},
    )
    return count_rows(con, f"SELECT count(*) FROM {name}")
