"""Running T-SQL on a live DB-API connection the way SSMS / sqlcmd would: one batch with every
result drained, and a script split into batches on its `GO` lines (the sandbox's SQL files)."""

from __future__ import annotations

import re
from typing import Any


def run_batch(con: Any, sql: str, *params: Any) -> list[tuple]:
    """Run one batch; drain every result set (NOCOUNT off: row counts are results too) and
    return the rows of the last one that had any."""
    cur = con.cursor()
    cur.execute(sql, *params)
    rows: list[tuple] = []
    while True:
        if cur.description is not None:
            rows = [tuple(r) for r in cur.fetchall()]
        if not cur.nextset():
            return rows


def run_script(con: Any, text: str) -> None:
    for batch in re.split(r"(?im)^[ \t]*GO[ \t]*$", text):
        if batch.strip():
            run_batch(con, batch)
