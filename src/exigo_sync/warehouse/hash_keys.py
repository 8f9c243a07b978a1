"""S2 `hash` on a SQL Server warehouse: the HMAC key's pads, kept for the length of dbt's run.

T-SQL has no HMAC function and dbt-sqlserver no way to bind a parameter into a model, and a key
written into SQL text would end up in dbt's compiled files and logs. So before dbt runs, the flow
writes the key's inner and outer pads (exigo_sync.hash_key.pads) with bound parameters into
`exigo_sync_keys.hmac_key`, a schema of its own that only the pipeline's login reads (analysts are
granted the marts, current state and history, never this schema); the macro `exigo_keyed_hash`
computes HASHBYTES('SHA2_256', opad + HASHBYTES('SHA2_256', ipad + value)) reading them by
subquery; and after dbt the flow deletes the row, whatever dbt's outcome. A run killed outright
leaves it until the next run (which rewrites and removes it).

Chosen over SQL Server's session context (`sp_set_session_context`, no table at all): dbt opens
its own connections, so the key would have to be set by a dbt hook, which writes it into SQL text
and dbt's log, or by patching dbt-sqlserver's connection code. The trade-off: for the minutes of a
dbt run the pads are at rest in the warehouse, readable by the pipeline's login and by whoever
administers the database (who can read the source's values anyway).

DuckDB needs none of this (its function reads the key from dbt's process environment), so a DuckDB
file, and the analytics copy of it, never holds the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from exigo_sync import hash_key
from exigo_sync.profiles import Target
from exigo_sync.warehouse.connection import connected, engine

SCHEMA = "exigo_sync_keys"
TABLE = f"{SCHEMA}.hmac_key"
KEY_NAME = "exigo_hash"  # the row the macro exigo_keyed_hash reads

DDL = (
    f"IF SCHEMA_ID('{SCHEMA}') IS NULL EXEC('CREATE SCHEMA {SCHEMA}')",
    f"IF OBJECT_ID('{TABLE}') IS NULL CREATE TABLE {TABLE} (key_name NVARCHAR(64) NOT NULL "
    "PRIMARY KEY, ipad VARBINARY(64) NOT NULL, opad VARBINARY(64) NOT NULL)",
)
DELETE = f"DELETE FROM {TABLE} WHERE key_name = ?"
INSERT = f"INSERT INTO {TABLE} (key_name, ipad, opad) VALUES (?, ?, ?)"


@contextmanager
def provided(warehouse: Target, needed: bool) -> Iterator[None]:
    """The HMAC key available to dbt's models on this warehouse while the block runs: on SQL
    Server, its pads stored (bound parameters) and deleted afterwards; nothing to do on DuckDB,
    or when no column is hashed (`needed`)."""
    if not needed or engine(warehouse) != "sqlserver":
        yield
        return
    ipad, opad = hash_key.pads(hash_key.from_environment())
    with connected(warehouse) as con:
        for statement in DDL:
            con.execute(statement)
        with con.transaction():
            con.execute(DELETE, [KEY_NAME])
            con.execute(INSERT, [KEY_NAME, ipad, opad])
    try:
        yield
    finally:
        with suppress(Exception), connected(warehouse) as con:
            con.execute(DELETE, [KEY_NAME])
