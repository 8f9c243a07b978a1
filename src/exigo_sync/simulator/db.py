"""Connection and SQL helpers shared by the simulator modules."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from exigo_sync.catalog import REPLICATED_TABLES, Column, duckdb_type
from exigo_sync.quoting import literal

# 2**64: hash() returns a UBIGINT, so this maps it onto [0, 1).
_HASH_RANGE = 18446744073709551616.0

# Temp macros are per connection (nothing is written to the file, so a read-only connection can
# define them too). Randomness comes from mix(seed, step, id, purpose): a pure function of its
# inputs, so results are identical whatever the thread count or scan order, unlike random().
#
# DuckDB's multi-argument hash() XORs the last argument into the combined hash of the others, so
# hash(s, st, i, 'a') and hash(s, st, i, 'b') are strongly correlated (r ~ 0.88 measured): rows
# picked by a low 'a' hash would all get nearly the same 'b' draw. Hashing the result once more
# (a full 64-bit mix) makes draws for different purposes independent; mix() is that.
_MACROS = (
    "CREATE OR REPLACE TEMP MACRO mix(s, st, i, p) AS hash(hash(s, st, i, p))",
    f"CREATE OR REPLACE TEMP MACRO rnd(s, st, i, p) AS mix(s, st, i, p)::DOUBLE / {_HASH_RANGE}",
    "CREATE OR REPLACE TEMP MACRO rint(s, st, i, p, n) AS "
    "least(floor(rnd(s, st, i, p) * n), n - 1)::BIGINT",
    # A name as an email address, login or web alias has it: lower case ASCII, accents and
    # anything but letters, digits and dots dropped ("José Müller" -> "josemuller").
    "CREATE OR REPLACE TEMP MACRO ascii_name(t) AS "
    "regexp_replace(lower(strip_accents(t)), '[^a-z0-9.]', '', 'g')",
    # A time uniformly inside [t0, t0 + span_us microseconds).
    "CREATE OR REPLACE TEMP MACRO rtime(s, st, i, p, t0, span_us) AS "
    "t0 + to_microseconds(floor(rnd(s, st, i, p) * span_us)::BIGINT)",
    # A version-4 (random) UUID, as SQL Server's newid() gives, from two draws: integer bit
    # arithmetic, about 3x cheaper than md5(text)::UUID (10M order lines: seconds of CPU).
    "CREATE OR REPLACE TEMP MACRO ruuid(s, st, i, p) AS "
    "((((mix(s, st, i, p || ':hi') & 18446744073709490175::UBIGINT) | 16384::UBIGINT)"
    "::UHUGEINT << 64) | ((mix(s, st, i, p || ':lo') & 4611686018427387903::UBIGINT)"
    " | 9223372036854775808::UBIGINT)::UHUGEINT)::UUID",
)

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

# DuckDB's default memory limit is 80% of RAM, and it keeps what it may: a 1M-customer creation
# peaked at 3.8 GB RSS with it. With a limit it spills to `<file>.tmp` instead (measured at 1M
# customers: about the same wall time, RSS just above the limit). Other developers share the
# machine, so every simulator connection stays within this.
MEMORY_LIMIT = "1536MB"


# The catalog the simulator file is attached as. Opened directly, DuckDB would name the catalog
# after the file, and a file called sim.duckdb, queue.duckdb or dbo.duckdb would make every
# `sim.Clock` ambiguous (that catalog, or the schema?).
CATALOG = "exigo_simulator"


@contextmanager
def connect(path: str | Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the simulator file for one operation and always close it: DuckDB holds a file lock
    while a connection is open, and dbt attaches the file right after a refresh."""
    con = duckdb.connect()
    try:
        # An in-memory database would spill to `.tmp` in the working directory; beside the file,
        # as a directly opened file does.
        con.execute(f"SET temp_directory = {literal(f'{path}.tmp')}")
        mode = " (READ_ONLY)" if read_only else ""
        con.execute(f"ATTACH {literal(str(path))} AS {CATALOG}{mode}")
        con.execute(f"USE {CATALOG}")
        # Bulk statements run long enough to trigger DuckDB's progress bar on the terminal.
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        for macro in _MACROS:
            con.execute(macro)
        yield con
    finally:
        con.close()


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of a `connect()` connection, reading the simulator file too: a DuckDB cursor is
    a connection of its own, and starts in the in-memory catalog."""
    cur = con.cursor()
    cur.execute(f"USE {CATALOG}")
    return cur


def execute(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Run `sql` with the named parameters it uses (DuckDB rejects unused ones), so callers can
    pass one shared parameter dict to every statement."""
    if not params:
        return con.execute(sql)
    used = set(_PARAM.findall(sql))
    return con.execute(sql, {k: v for k, v in params.items() if k in used})


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The single value `sql` returns (None if it returns no row)."""
    row = con.execute(sql, params).fetchone() if params is not None else con.execute(sql).fetchone()
    return None if row is None else row[0]


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def dbo_columns(
    con: duckdb.DuckDBPyConnection, table: str, params: Mapping[str, Any] | None
) -> list[str]:
    """dbo.<table>'s columns now; an advance caches them in params["_dbo_columns"] (the schema
    cannot change while it holds the connection), saving a catalogue query per statement."""
    cache = (params or {}).get("_dbo_columns")
    if isinstance(cache, dict):
        if table not in cache:
            cache[table] = table_columns(con, "dbo", table)
        return list(cache[table])
    return table_columns(con, "dbo", table)


def default_expr(column: Column) -> str:
    """Plain default for a column the generator does not model (every NOT NULL gets a value)."""
    t = duckdb_type(column.sql_type)
    if column.nullable:
        return f"NULL::{t}"
    if t == "VARCHAR":
        return "''"
    if t == "BOOLEAN":
        return "false"
    if t == "TIMESTAMP":
        return "TIMESTAMP '1900-01-01'"  # SQL Server's zero date
    if t == "BLOB":
        return "''::BLOB"
    if t == "UUID":
        return "'00000000-0000-0000-0000-000000000000'::UUID"
    return f"0::{t}"


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    select_sql: str,
    params: Mapping[str, Any] | None = None,
) -> int:
    """Insert the rows of `select_sql` into dbo.<table> by column name.

    The select names only the columns that matter; the rest get plain defaults. Columns are
    matched against dbo as it is now, so a column added by a schema-evolution test gets NULL and
    a dropped one is skipped.
    """
    catalogue = REPLICATED_TABLES[table]
    provided = _select_columns(con, select_sql, params)
    known = {c.name: c for c in catalogue.columns}
    target = dbo_columns(con, table, params)
    exprs = []
    for name in target:
        if name in provided:
            exprs.append(quote(name))
        elif name in known:
            exprs.append(default_expr(known[name]))
        else:
            exprs.append("NULL")
    cols = ", ".join(quote(n) for n in target)
    # Straight from the select into dbo: no intermediate copy of millions of wide rows.
    inserted = execute(
        con,
        f"INSERT INTO dbo.{quote(table)} ({cols}) SELECT {', '.join(exprs)} FROM ({select_sql}) s",
        params,
    ).fetchone()
    return int(inserted[0]) if inserted else 0


# The builders' SELECT texts are constants, so their output columns are looked up once.
_SELECT_COLUMNS: dict[str, frozenset[str]] = {}


def _select_columns(
    con: duckdb.DuckDBPyConnection, select_sql: str, params: Mapping[str, Any] | None
) -> frozenset[str]:
    if select_sql not in _SELECT_COLUMNS:
        cursor = execute(con, f"SELECT * FROM ({select_sql}) s LIMIT 0", params)
        _SELECT_COLUMNS[select_sql] = frozenset(d[0] for d in cursor.description or ())
    return _SELECT_COLUMNS[select_sql]


def update_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    alias: str,
    sets: Mapping[str, str],
    tail_sql: str,
    params: Mapping[str, Any] | None = None,
) -> None:
    """UPDATE dbo.<table> <alias> SET ... <tail_sql>, skipping SET targets that a
    schema-evolution test dropped from dbo."""
    present = set(dbo_columns(con, table, params))
    assignments = ", ".join(f"{quote(c)} = {e}" for c, e in sets.items() if c in present)
    execute(con, f"UPDATE dbo.{quote(table)} AS {alias} SET {assignments} {tail_sql}", params)
