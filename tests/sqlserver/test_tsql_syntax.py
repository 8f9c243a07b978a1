"""The SQL Server path short of a live server: the `sqlserver__` implementations of the
cross-database macros parse as T-SQL (sqlglot). The ledger's T-SQL is checked with the ledger's
SQL, in tests/warehouse/test_ledger_sql.py.

The macros are rendered by dbt itself (`dbt compile --inline --target sqlserver`, which needs no
connection), so dispatch, dbt's own sqlserver cross-db macros and our wrappers are all exercised.
sqlglot's parser is lenient about a missing closing parenthesis, so parentheses are also counted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlglot import exp

from exigo_sync.catalog import LOOKUP_TABLES, REPLICATED_TABLES
from tests.dbt.helpers import DbtEnv, failures
from tests.sqlserver.tsql import parse_tsql

SQL_SERVER_TYPES = sorted(
    {c.sql_type for t in (*REPLICATED_TABLES.values(), *LOOKUP_TABLES.values()) for c in t.columns}
)
TIMESTAMP = "2026-01-05T10:00:00.123456"
JSON_PAIRS = [["CustomerID", "customer_id"], ["FirstName", "first_name"], ["Email", "email"]]

# name -> (jinja expression, how to wrap the rendered snippet into a statement)
SNIPPETS: dict[str, tuple[str, str]] = {
    **{
        f"type:{t}": (f"exigo_type('{t}')", "SELECT CAST(q.c AS {}) AS x FROM t q")
        for t in SQL_SERVER_TYPES
    },
    **{
        f"try_cast:{t}": (f"exigo_try_cast('q.c', exigo_type('{t}'))", "SELECT {} AS x FROM t q")
        for t in SQL_SERVER_TYPES
    },
    **{
        f"text:{t}": (f"exigo_text('q.c', exigo_type('{t}'))", "SELECT {} AS x FROM t q")
        for t in (*SQL_SERVER_TYPES, "datetime2", "date", "smallmoney", "binary(16)")
    },
    "text:untyped": ("exigo_text('q.c')", "SELECT {} AS x FROM t q"),
    "length": ("exigo_length('q.c')", "SELECT {} AS x FROM t q"),
    "hash": ("exigo_hash(exigo_text('q.c', 'nvarchar(50)'))", "SELECT {} AS x FROM t q"),
    "mask": ("exigo_mask(exigo_text('q.c', 'nvarchar(50)'))", "SELECT {} AS x FROM t q"),
    "row_to_json": (f"exigo_row_to_json({JSON_PAIRS})", "SELECT {} AS x FROM t"),
    "timestamp_literal": (f"exigo_timestamp_literal('{TIMESTAMP}')", "SELECT {} AS x FROM t"),
    "true_false": (
        "'case when q.c = 1 then ' ~ exigo_true() ~ ' else ' ~ exigo_false() ~ ' end'",
        "SELECT {} AS x FROM t q",
    ),
    **{
        f"row_hash:{entity}": (
            f"exigo_row_hash(exigo_documented_columns('{entity}'))",
            "SELECT {} AS x FROM t",
        )
        for entity in (
            "customers",
            "orders",
            "order_details",
            "payments",
            "customer_accounts",
            "customer_sites",
        )
    },
}

MARKER = "-- @@snippet "


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    """Every snippet rendered for the sqlserver target in one `dbt compile --inline` (~4 s)."""
    env = DbtEnv(Path(tmp_path_factory.mktemp("sqlserver_compile")))
    inline = "\n".join(f"{MARKER}{name}\n{{{{ {expr} }}}}" for name, (expr, _) in SNIPPETS.items())
    res = env.invoke("compile", "--target", "sqlserver", "--no-populate-cache", "--inline", inline)
    assert res.success, failures(res)
    compiled = res.result.results[0].node.compiled_code
    parts = compiled.split(MARKER)[1:]
    out = {}
    for part in parts:
        name, _, body = part.partition("\n")
        out[name.strip()] = body.strip()
    assert set(out) == set(SNIPPETS)
    return out


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_sqlserver_macro_renders_valid_tsql(rendered, name):
    snippet = rendered[name]
    assert snippet, f"{name} rendered empty"
    assert "{{" not in snippet and "{%" not in snippet
    tree = parse_tsql(SNIPPETS[name][1].format(snippet))
    assert isinstance(tree, exp.Select)


def test_sqlserver_macros_pick_the_sqlserver_implementations(rendered):
    # On SQL Server the warehouse keeps the source's own types.
    for t in SQL_SERVER_TYPES:
        assert rendered[f"type:{t}"] == t.replace(" ", "")
    # Lossless CONVERT styles (H1: the hash input must not lose precision).
    assert rendered["text:datetime"].endswith(", 121)")
    assert rendered["text:datetime2"].endswith(", 121)")
    assert rendered["text:money"].endswith(", 2)")
    assert rendered["text:varbinary(50)"].endswith(", 1)")
    assert rendered["text:int"] == "convert(nvarchar(max), q.c)"
    assert "hashbytes('SHA2_256'" in rendered["hash"]
    assert "try_cast(" in rendered["try_cast:money"].lower()
    assert "for json path" in rendered["row_to_json"]
    assert "include_null_values" in rendered["row_to_json"]
    assert rendered["true_false"] == "case when q.c = 1 then cast(1 as bit) else cast(0 as bit) end"
    assert "datalength(" in rendered["mask"]
    literal = parse_tsql(f"SELECT {rendered['timestamp_literal']} AS x")
    assert TIMESTAMP in literal.sql("tsql")
    # The row hash covers every documented column that survives the S2 policy ...
    assert "'customer_id:'" in rendered["row_hash:customers"]
    assert "password_hash" not in rendered["row_hash:customers"]
    # ... and stays within T-SQL's CONCAT limit of 254 arguments (a parser does not check it).
    for name, snippet in rendered.items():
        for concat in parse_tsql(f"SELECT {snippet} AS x").find_all(exp.Concat):
            assert 2 <= len(concat.expressions) <= 254, name
