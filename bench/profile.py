"""DuckDB `EXPLAIN ANALYZE` of a batch's history and current-state models, statement by
statement, on the warehouse as it was when they ran (the batch's staging built, nothing merged).

dbt-duckdb runs an incremental delete+insert model as three statements: the model's compiled
select into a temporary table (target/compiled/...), then the DELETE and the INSERT in
target/run/... . Each is replayed here under `EXPLAIN ANALYZE` (profiling output JSON) in the
models' dbt order, so every statement sees what it saw in the batch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb

from exigo_sync.catalog import REPLICATED_ENTITY_NAMES

_TMP = re.compile(r'"?(\w+__dbt_tmp\d*)"?')


def _operators(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    info = node.get("extra_info") or {}
    out.append(
        {
            "name": node.get("name") or node.get("operator_name"),
            "seconds": float(node.get("timing") or node.get("operator_timing") or 0.0),
            "rows": int(node.get("intermediate_rows") or node.get("operator_cardinality") or 0),
            "rows_scanned": int(node.get("rows_scanned") or 0),
            "table": info.get("Table", "") if isinstance(info, dict) else "",
        }
    )
    for child in node.get("children") or []:
        _operators(child, out)


def _analyze(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    (row,) = con.execute("EXPLAIN ANALYZE " + sql).fetchall()
    plan = json.loads(row[1])
    ops: list[dict[str, Any]] = []
    for root in plan.get("operator") or []:
        _operators(root, ops)
    query = plan.get("query") or {}
    system = plan.get("system") or {}
    ops.sort(key=lambda o: -o["seconds"])
    return {
        "seconds": round(float(query.get("total_time") or 0.0), 3),
        "rows_scanned": int(query.get("total_rows_scanned") or 0),
        "peak_buffer_mb": round(int(system.get("peak_buffer_memory") or 0) / 2**20, 1),
        "top_operators": [
            {**o, "seconds": round(o["seconds"], 3)} for o in ops[:5] if o["seconds"] > 0
        ],
        "plan": plan,
    }


def _statements(run_file: Path) -> list[str]:
    text = run_file.read_text()
    return [s.strip() for s in text.split(";") if s.strip()]


def profile_models(
    warehouse: Path, source: Path, dbt_sql: Path, out_dir: Path
) -> list[dict[str, Any]]:
    """Replay the history and current-state models of the batch whose compiled SQL is under
    `dbt_sql` (a copy of the batch's dbt target dir). Returns one entry per statement; the full
    JSON plans go to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    con.execute(f"ATTACH '{source}' AS exigo (READ_ONLY)")
    con.execute("PRAGMA enable_profiling='json'")
    project = "exigo_sync"
    entries = []
    try:
        for layer in ("history", "current"):
            for entity in REPLICATED_ENTITY_NAMES:
                model = f"{entity}_{layer}"
                compiled = dbt_sql / "compiled" / project / "models" / layer / f"{model}.sql"
                run_file = dbt_sql / "run" / project / "models" / layer / f"{model}.sql"
                if not compiled.is_file() or not run_file.is_file():
                    continue
                dml = _statements(run_file)
                tmp = next((m.group(1) for s in dml for m in _TMP.finditer(s)), None)
                if tmp is None:
                    continue
                select = compiled.read_text().strip().rstrip(";")
                steps = [("select into temp table", f'CREATE TEMP TABLE "{tmp}" AS ({select})')]
                steps += [(s.split()[0].lower(), s) for s in dml]
                for what, sql in steps:
                    result = _analyze(con, sql)
                    name = f"{model}.{what.replace(' ', '_')}"
                    (out_dir / f"{name}.json").write_text(json.dumps(result.pop("plan"), indent=1))
                    entries.append({"model": model, "statement": what, **result})
                con.execute(f'DROP TABLE IF EXISTS "{tmp}"')
    finally:
        con.close()
    return entries
