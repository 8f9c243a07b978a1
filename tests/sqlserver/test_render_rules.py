"""The rules test_render_models.py applies, shown to reject what they exist to reject (so a
passing render check is not a vacuous one)."""

from __future__ import annotations

import pytest

from tests.sqlserver import tsql


def _view(body: str) -> tuple[tsql.Parsed, object]:
    report = tsql.check_batch(f"EXEC('CREATE OR ALTER VIEW [s].[v] AS {body};')")
    return next(report.views())


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("select a from t order by a", "ORDER BY without TOP"),
        ("select * from (with c as (select 1 as x) select x from c) q", "nested WITH"),
        ("with c as (select 1 as x) select x from c;", "ends with ';'"),
    ],
)
def test_view_body_rules_reject(body, problem):
    parsed, create = _view(body)
    assert any(problem in p for p in tsql.view_body_problems(create, parsed.leaf))


def test_view_body_rules_accept_window_order_top_and_one_cte():
    body = (
        "with c as (select a, row_number() over (order by a) as r from t) "
        "select top (5) a from c order by a"
    )
    parsed, create = _view(body)
    assert tsql.view_body_problems(create, parsed.leaf) == []


def test_non_ascii_text_rules():
    inside = tsql.check_batch("EXEC('select N''caf\u00e9'' as x')")
    assert tsql.literal_problems(inside.parsed[0])  # lost to the code page inside EXEC('...')
    outside = tsql.check_batch("select 'caf\u00e9' as x")
    assert tsql.literal_problems(outside.parsed[0])  # no N prefix
    national = tsql.check_batch("select N'caf\u00e9' as x")
    assert tsql.literal_problems(national.parsed[0]) == []


def test_batches_split_into_statements_and_exec_is_unwrapped():
    batch = (
        "USE [db]; EXEC('SELECT * INTO [db].[s].[t] FROM [s].[v]') "
        "EXEC('DROP VIEW IF EXISTS [s].[v]') IF @@TRANCOUNT > 0 COMMIT TRANSACTION "
        "BEGIN TRY SELECT 1 AS x END TRY BEGIN CATCH THROW; END CATCH "
        "SET NOCOUNT ON; delete from t where (k) in (select (k) from u) OPTION (LABEL = 'x');"
    )
    report = tsql.check_batch(batch)
    kinds = [(type(p.tree).__name__, p.in_exec) for p in report.parsed]
    assert kinds == [
        ("Use", False),
        ("Select", True),
        ("Drop", True),
        ("Select", False),  # the IF condition, as SELECT CASE WHEN ...
        ("Commit", False),
        ("Select", False),
        ("NoneType", False),  # THROW: listed in UNPARSED_BY_SQLGLOT
        ("Set", False),
        ("Delete", False),
    ]
    assert report.parsed[-1].options == "LABEL = 'x'"
    assert report.unparsed == {"THROW (rethrow in a CATCH block)": 1}


@pytest.mark.parametrize(
    "bad",
    [
        "select (a from t",  # unbalanced parentheses
        "EXEC('select from where')",  # inner SQL that does not parse
        "delete from t OPTION (NOT_A_HINT(1))",  # unknown query hint
    ],
)
def test_unparseable_statements_fail(bad):
    with pytest.raises(tsql.TsqlError):
        tsql.check_batch(bad)
