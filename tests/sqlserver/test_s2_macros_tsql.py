"""The SQL Server side of S2's macros, rendered from their files and parsed as T-SQL, short of a
server: the keyed hash over the stored HMAC pads, and names from the source (quoted identifiers,
JSON keys, literals) with the characters that would end them. The macros are rendered with
Jinja itself (dbt's `return` and `adapter.dispatch` stood in for), so the test reads the macro
text the project ships. Only a live server proves SQL Server runs it."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest

from exigo_sync.settings import REPO_ROOT
from tests.sqlserver import tsql

MACROS = [
    REPO_ROOT / "dbt_project" / "macros" / "cross_db" / name
    for name in ("exigo_quoting.sql", "exigo_keyed_hash.sql", "exigo_json.sql")
]
HOSTILE = ['x"; DROP TABLE exigo_sync.batches; --', "a'b", "c]d", "[e]"]


class _Returned(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


def _return(value: Any) -> None:
    raise _Returned(value)


class _Relation:
    def __init__(self, database: str, schema: str, identifier: str) -> None:
        self.parts = (database, schema, identifier)

    def __str__(self) -> str:
        return ".".join(f'"{p}"' for p in self.parts)


class _Api:
    class Relation:
        @staticmethod
        def create(database: str, schema: str, identifier: str) -> _Relation:
            return _Relation(database, schema, identifier)


def _sqlserver_macros() -> Any:
    text = "\n".join(p.read_text() for p in MACROS)
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    module: Any = None

    class _Adapter:
        @staticmethod
        def dispatch(name: str, _package: str) -> Any:
            return getattr(module, f"sqlserver__{name}")

    module = env.from_string(text).make_module(
        {"return": _return, "api": _Api, "target": {"database": "exigo_warehouse"},
         "adapter": _Adapter}
    )  # fmt: skip
    return module


def _call(macro: Any, *args: Any) -> str:
    try:
        return str(macro(*args)).strip()
    except _Returned as returned:
        return str(returned.value)


MODULE = _sqlserver_macros()


def test_s2_keyed_hash_reads_the_pads_never_a_key() -> None:
    expr = _call(MODULE.exigo_keyed_hash, "convert(nvarchar(max), q.[Email])")
    assert "hashbytes('SHA2_256'" in expr and '"exigo_sync_keys"."hmac_key"' in expr
    view = f"select case when q.[Email] is null then null else {expr} end as email from t q"
    report = tsql.check_batch(
        f"EXEC('CREATE OR ALTER VIEW [s].[v] AS {view.replace(chr(39), 2 * chr(39))};')"
    )
    [(parsed, create)] = list(report.views())
    assert not tsql.view_body_problems(create, parsed.leaf)


@pytest.mark.parametrize("name", HOSTILE)
def test_s2_names_from_the_source_stay_one_identifier_or_literal(name: str) -> None:
    quoted = _call(MODULE.exigo_quote, name)
    literal = _call(MODULE.exigo_string_literal, name)
    json = _call(MODULE.exigo_row_to_json, [[name, f"q.{quoted}"], ["Plain", "q.[Plain]"]])
    sql = f"select q.{quoted} as c, {literal} as l, {json} as j from t q"
    tree = tsql.parse_tsql(sql)
    names = [c.name for c in tree.find_all(tsql.exp.Column)]
    assert name in names  # the whole name, one column
    assert tree.find(tsql.exp.Drop) is None
    texts = [str(s.this) for s in tree.find_all(tsql.exp.National, tsql.exp.Literal)]
    assert texts.count(name) == 1  # the whole name, one N'...' literal
