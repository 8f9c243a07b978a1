"""The floor: the same SCD2 merge as exigo-sync's history and current-state models, written by
hand as the fewest DuckDB statements per entity, starting from the batch's staging tables.

Per entity, in one transaction:

    1. CREATE TEMP TABLE chg   the rows that open a version: the staged rows, plus deletion
                               versions (order lines missing from their changed order; payments
                               gone from dbo.Payments), compared with the key's current row
                               (new key, or not older and a different hash / deletion flag)
    2. UPDATE history          close the current rows of those keys (valid_to, is_current)
    3. INSERT history          the new versions
    4. DELETE + INSERT current the current-state rows of those keys

It is what exigo-sync's models do, without dbt and without the checks exigo-sync adds (data
tests, the deletion guard, B3 probes, ties): the cost of the data work alone. `verify` proves on
a case that it writes exactly the history and current state exigo-sync writes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from exigo_sync.catalog import REPLICATED_ENTITIES as ENTITIES

HISTORY_META = (
    "valid_from", "valid_to", "is_current", "is_deleted", "deleted_at", "row_hash", "batch_id",
    "history_version_id",
)  # fmt: skip


@dataclass(frozen=True)
class Batch:
    batch_id: int
    refreshed_at: str  # ISO, source clock


def refreshed_batch(con: duckdb.DuckDBPyConnection) -> Batch:
    rows = con.execute(
        "SELECT batch_id, refresh_started_at FROM exigo_sync.batches WHERE status = 'refreshed'"
    ).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"the floor needs exactly one 'refreshed' batch, found {len(rows)}")
    return Batch(int(rows[0][0]), rows[0][1].isoformat(sep=" "))


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ? AND table_catalog = current_database() ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def entity_statements(
    con: duckdb.DuckDBPyConnection, entity: str, keys: Sequence[str], batch: Batch,
    swept: Sequence[str],
) -> dict[str, list[str]]:  # fmt: skip
    """{'history': [...], 'current': [...]} statements for one entity."""
    h = f"exigo_history.{entity}_history"
    c = f"exigo_current.{entity}_current"
    s = f"exigo_staging.stg_exigo__{entity}"
    staged_cols = set(_columns(con, "exigo_staging", f"stg_exigo__{entity}"))
    hist_cols = _columns(con, "exigo_history", f"{entity}_history")
    data = [x for x in hist_cols if x not in keys and x not in HISTORY_META]
    k = list(keys)

    def cols(alias: str, names: Sequence[str]) -> str:
        return ", ".join(f"{alias}.{n}" for n in names)

    def on(a: str, b: str) -> str:
        return " AND ".join(f"{a}.{x} = {b}.{x}" for x in k)

    staged_data = ", ".join(f"s.{x}" if x in staged_cols else f"NULL AS {x}" for x in data)
    parts = [
        f"SELECT {cols('s', k)}, {staged_data}, s.version_time, s.row_hash, false AS is_deleted "
        f"FROM {s} s"
    ]
    if entity == "order_details":  # H7 by_parent
        parts.append(
            f"SELECT {cols('cur', k)}, {cols('cur', data)}, o.version_time, cur.row_hash, true "
            f"FROM {h} cur JOIN exigo_staging.stg_exigo__orders o ON o.order_id = cur.order_id "
            f"WHERE cur.is_current AND NOT cur.is_deleted "
            f"AND NOT EXISTS (SELECT 1 FROM {s} s WHERE {on('s', 'cur')})"
        )
    if entity in swept:  # H7 by_sweep
        table = next(e.table for e in ENTITIES if e.name == entity)
        src_keys = " AND ".join(
            f'src."{_pascal(table, x)}" = cur.{x}' for x in k
        )  # PascalCase source keys
        parent = (
            " AND NOT EXISTS (SELECT 1 FROM exigo_staging.stg_exigo__orders p "
            "WHERE p.order_id = cur.order_id)"
            if entity == "order_details"
            else ""
        )
        parts.append(
            f"SELECT {cols('cur', k)}, {cols('cur', data)}, "
            f"TIMESTAMP '{batch.refreshed_at}', cur.row_hash, true FROM {h} cur "
            f"WHERE cur.is_current AND NOT cur.is_deleted "
            f"AND NOT EXISTS (SELECT 1 FROM exigo.dbo.{table} src WHERE {src_keys}) "
            f"AND NOT EXISTS (SELECT 1 FROM {s} s WHERE {on('s', 'cur')}){parent}"
        )
    incoming = "\nUNION ALL\n".join(parts)
    key_text = " || '|' || ".join(f"CAST(chg.{x} AS VARCHAR)" for x in k)
    new_cols = [*k, *data, *HISTORY_META]
    history = [
        "DROP TABLE IF EXISTS chg",
        f"""CREATE TEMP TABLE chg AS
WITH inc ({", ".join([*k, *data, "version_time", "row_hash", "is_deleted"])}) AS (
{incoming}
)
SELECT inc.* FROM inc LEFT JOIN {h} cur ON {on("cur", "inc")} AND cur.is_current
WHERE cur.{k[0]} IS NULL
   OR (inc.version_time >= cur.valid_from
       AND (inc.row_hash <> cur.row_hash OR inc.is_deleted <> cur.is_deleted))""",
        f"""UPDATE {h} AS cur SET valid_to = chg.version_time, is_current = false
FROM chg WHERE {on("cur", "chg")} AND cur.is_current""",
        f"""INSERT INTO {h} ({", ".join(new_cols)})
SELECT {cols("chg", [*k, *data])}, chg.version_time, NULL, true, chg.is_deleted,
       CASE WHEN chg.is_deleted THEN chg.version_time END, chg.row_hash, {batch.batch_id},
       {key_text} || '@{batch.batch_id}'
FROM chg""",
    ]
    cur_cols = _columns(con, "exigo_current", f"{entity}_current")
    exprs = {
        **{x: f"chg.{x}" for x in [*k, *data]},
        "valid_from": "chg.version_time",
        "is_deleted": "chg.is_deleted",
        "deleted_at": "CASE WHEN chg.is_deleted THEN chg.version_time END",
        "row_hash": "chg.row_hash",
        "batch_id": str(batch.batch_id),
        "history_version_id": f"{key_text} || '@{batch.batch_id}'",
    }
    current = [
        f"DELETE FROM {c} AS cur WHERE EXISTS (SELECT 1 FROM chg WHERE {on('chg', 'cur')})",
        f"""INSERT INTO {c} ({", ".join(cur_cols)})
SELECT {", ".join(exprs[x] for x in cur_cols)} FROM chg""",
    ]
    return {"history": history, "current": current}


def _pascal(table: str, snake: str) -> str:
    from exigo_sync.catalog import REPLICATED_TABLES
    from exigo_sync.naming import column_name

    for col in REPLICATED_TABLES[table].key:
        if column_name(col) == snake:
            return col
    raise KeyError(f"{table} has no key column {snake}")


def run_floor(
    warehouse: str,
    source: str,
    swept: Sequence[str] = ("payments",),
    batch: Batch | None = None,
) -> dict[str, Any]:
    """Run the floor on `warehouse` (with the batch's staging built and its ledger row
    'refreshed', or the `batch` given); returns seconds per entity and part. Timed from connect
    to close (a close checkpoints, as dbt's does)."""
    started = time.perf_counter()
    con = duckdb.connect(warehouse)
    con.execute(f"ATTACH '{source}' AS exigo (READ_ONLY)")
    batch = batch or refreshed_batch(con)
    out: dict[str, Any] = {"batch_id": batch.batch_id, "entities": {}, "rows": {}}
    history_s = current_s = 0.0
    con.execute("BEGIN TRANSACTION")
    for e in ENTITIES:
        stmts = entity_statements(con, e.name, e.key_columns, batch, swept)
        t0 = time.perf_counter()
        for sql in stmts["history"]:
            con.execute(sql)
        t1 = time.perf_counter()
        for sql in stmts["current"]:
            con.execute(sql)
        t2 = time.perf_counter()
        (n,) = con.execute("SELECT count(*) FROM chg").fetchone()
        out["rows"][e.name] = int(n)
        out["entities"][e.name] = {"history": round(t1 - t0, 3), "current": round(t2 - t1, 3)}
        history_s += t1 - t0
        current_s += t2 - t1
    t3 = time.perf_counter()
    con.execute("DROP TABLE IF EXISTS chg")
    con.execute("COMMIT")
    con.close()
    out["commit_close"] = round(time.perf_counter() - t3, 3)
    out["history_seconds"] = round(history_s, 3)
    out["current_seconds"] = round(current_s, 3)
    out["wall_seconds"] = round(time.perf_counter() - started, 3)
    return out


def statements_text(warehouse: str, source: str, swept: Sequence[str] = ("payments",)) -> str:
    """Every floor statement, for the report's appendix."""
    con = duckdb.connect(warehouse, read_only=True)
    try:
        con.execute(f"ATTACH '{source}' AS exigo (READ_ONLY)")
        batch = refreshed_batch(con)
        chunks = []
        for e in ENTITIES:
            stmts = entity_statements(con, e.name, e.key_columns, batch, swept)
            chunks.append(f"-- {e.name}\n" + ";\n".join(stmts["history"] + stmts["current"]))
        return ";\n\n".join(chunks) + ";\n"
    finally:
        con.close()


def compare(a: str, b: str) -> dict[str, Any]:
    """Whether two warehouses hold the same history and current state (every column of every
    row, compared as sets both ways). Returns {table: {only_a, only_b, rows}}."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        out = {}
        for e in ENTITIES:
            for schema, table in (
                ("exigo_history", f"{e.name}_history"),
                ("exigo_current", f"{e.name}_current"),
            ):
                names = sorted(
                    r[0]
                    for r in con.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_catalog = 'a' AND table_schema = ? AND table_name = ?",
                        [schema, table],
                    ).fetchall()
                )
                sel = ", ".join(f'"{n}"' for n in names)
                only_a = con.execute(
                    f"SELECT count(*) FROM (SELECT {sel} FROM a.{schema}.{table} EXCEPT ALL "
                    f"SELECT {sel} FROM b.{schema}.{table})"
                ).fetchone()[0]
                only_b = con.execute(
                    f"SELECT count(*) FROM (SELECT {sel} FROM b.{schema}.{table} EXCEPT ALL "
                    f"SELECT {sel} FROM a.{schema}.{table})"
                ).fetchone()[0]
                (rows,) = con.execute(f"SELECT count(*) FROM a.{schema}.{table}").fetchone()
                out[f"{schema}.{table}"] = {
                    "only_a": int(only_a), "only_b": int(only_b), "rows": int(rows),
                }  # fmt: skip
        return out
    finally:
        con.close()
