"""Every statement the ledger and the lock send (exigo_sync.warehouse.ledger_sql): values always
bound, never formatted in (S1), and valid T-SQL short of a server: the portable DML and the
T-SQL DDL parse as T-SQL (sqlglot; parentheses counted too, sqlglot's parser is lenient about a
missing one). The engine-neutral tests of the Ledger running them are test_ledger.py."""

from __future__ import annotations

import re

from sqlglot import exp

from exigo_sync.catalog import REPLICATED_ENTITIES
from exigo_sync.warehouse import ledger_sql
from tests.sqlserver.tsql import parse_tsql

STATEMENT_START = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)


def test_s1_ledger_sql_binds_values() -> None:
    statements = [v for k, v in vars(ledger_sql).items() if k.isupper() and isinstance(v, str)]
    dml = [s for s in statements if s.lstrip().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert dml and all("?" in s for s in dml)
    assert all("'" not in s.replace("'refreshing'", "").replace("'refreshed'", "")
               .replace("'merged'", "").replace("'failed'", "") for s in dml)  # fmt: skip
    assert len(ledger_sql.ddl("duckdb")) == len(ledger_sql.ddl("sqlserver")) == 4


def ledger_statements() -> dict[str, str]:
    """Every statement the ledger / lock code runs on SQL Server: the T-SQL DDL and the portable
    DML (module constants and the per-entity statistics builders)."""
    out = {
        name: value
        for name, value in vars(ledger_sql).items()
        if name.isupper() and isinstance(value, str) and STATEMENT_START.match(value)
    }
    for entity in REPLICATED_ENTITIES:
        out[f"version_stats({entity.name})"] = ledger_sql.version_stats(entity)
        out[f"tie_stats({entity.name})"] = ledger_sql.tie_stats(entity)
    out["reject_stats"] = ledger_sql.reject_stats("exigo_staging")
    out["present_views"] = ledger_sql.present_views(2)
    for part in ledger_sql.FINGERPRINTS:
        out[f"mark_fingerprint({part})"] = ledger_sql.mark_fingerprint(part)
        out[f"last_fingerprint({part})"] = ledger_sql.last_fingerprint(part)
    return out


def test_ledger_dml_parses_as_tsql():
    statements = ledger_statements()
    # Guard against the discovery above silently finding nothing.
    assert {"INSERT_BATCH", "MARK_MERGED", "WATERMARK", "TAKE_OVER_LOCK", "RECENT_BATCHES"} <= set(
        statements
    )
    assert len(statements) >= 20
    for name, sql in statements.items():
        tree = parse_tsql(sql)
        assert isinstance(tree, exp.Select | exp.Insert | exp.Update | exp.Delete), name


def test_ledger_ddl_parses_as_tsql():
    statements = ledger_sql.ddl("sqlserver")
    schema_stmt, *table_stmts = statements
    # IF SCHEMA_ID(...) IS NULL EXEC('CREATE SCHEMA ...'): CREATE SCHEMA must be alone in its
    # batch, hence the dynamic SQL. sqlglot reads EXEC there as an alias, so check the parts.
    match = re.fullmatch(r"IF SCHEMA_ID\('(\w+)'\) IS NULL EXEC\('([^']*)'\)", schema_stmt)
    assert match and match[1] == ledger_sql.SCHEMA, schema_stmt
    assert isinstance(parse_tsql(f"SELECT SCHEMA_ID('{match[1]}') AS x"), exp.Select)
    create_schema = parse_tsql(match[2])
    assert isinstance(create_schema, exp.Create) and create_schema.kind == "SCHEMA"

    created = {}
    for sql in table_stmts:
        tree = parse_tsql(sql)
        assert isinstance(tree, exp.IfBlock), sql
        assert tree.find(exp.ObjectId) is not None, sql  # guarded by OBJECT_ID(...) IS NULL
        create = tree.find(exp.Create)
        assert create is not None and create.kind == "TABLE", sql
        table = create.find(exp.Table)
        assert table.db == ledger_sql.SCHEMA
        created[table.name] = [c.name for c in create.find_all(exp.ColumnDef)]
    assert set(created) == {"batches", "batch_entity_stats", "run_lock"}
    assert set(ledger_sql.ROW_COLUMNS.values()) <= set(created["batches"])
    # T-SQL has no CREATE ... IF NOT EXISTS.
    assert not any("IF NOT EXISTS" in s.upper() for s in statements)


def test_schemas_found_in_the_catalogue_are_quoted_never_pasted() -> None:
    """The rejected-rows and guard tables are found by name in the catalogue; a schema someone
    named to be SQL stays a name: the statement reads that schema's table and runs nothing
    else."""
    import duckdb

    hostile = 'a"; DROP TABLE exigo_sync.batches; --'
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA exigo_sync")
    con.execute("CREATE TABLE exigo_sync.batches (batch_id INTEGER)")
    con.execute("INSERT INTO exigo_sync.batches VALUES (1)")
    quoted = '"' + hostile.replace('"', '""') + '"'
    con.execute(f"CREATE SCHEMA {quoted}")
    con.execute(f"CREATE TABLE {quoted}.exigo_rejected_rows (entity VARCHAR, batch_id INTEGER)")
    con.execute(f"INSERT INTO {quoted}.exigo_rejected_rows VALUES ('customers', 1)")
    con.execute(
        f"CREATE TABLE {quoted}.exigo_deletion_guard (entity VARCHAR, batch_id INTEGER, "
        "live_keys INTEGER, source_keys INTEGER, missing_keys INTEGER)"
    )
    (first,) = con.execute(ledger_sql.FIND_REJECTED_ROWS).fetchone()
    assert first == hostile  # the first catalogue match, as the ledger takes it
    assert con.execute(ledger_sql.reject_stats(first), [1]).fetchall() == [("customers", 1)]
    assert con.execute(ledger_sql.guard_stats(first), [1]).fetchall() == []
    assert con.execute("SELECT COUNT(*) FROM exigo_sync.batches").fetchone() == (1,)
    for sql in (ledger_sql.reject_stats(first), ledger_sql.guard_stats(first)):
        assert isinstance(parse_tsql(sql), exp.Select)
