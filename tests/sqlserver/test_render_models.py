"""Every model, rendered and run by dbt-sqlserver, checked as T-SQL, without a server.

dbt runs in-process (`dbt build --target sqlserver`) with the adapter's driver replaced by
`CatalogueDriver` (tests/sqlserver/catalogue_connection.py; the seam is dbt-sqlserver's own
`configure_runtime_state_for_test(pyodbc_module=...)`). Its connections answer introspection from
a fixture catalogue: the Exigo sync database typed from the documented source types, and the
warehouse relations as dbt creates them, with column names from a DuckDB build of the same project
(tests/sqlserver/catalogue.py explains the typing). Every batch dbt sends is recorded.

Two passes over one catalogue:
1. first build: nothing in the warehouse; every model is created (`SELECT * INTO` + indexes);
2. incremental: batch 2 on what pass 1 built, so `is_incremental()` is true and the
   materialization renders the temp view, `SELECT * INTO`, delete, insert; `customers_history`
   and `customers_current` are made to miss `loyalty_tier` (a column the queue gained) to force
   `append_new_columns`, and `customers_current.email` is narrowed to force a column widening.

Fixture deviations from the documented source, to reach the code paths they exercise:
- queue.Customers has an undocumented column LoyaltyTier nvarchar(20) (B3: carried through);
- queue.Customers.Email is nvarchar(100) (documented nvarchar(50)) and queue.Orders.Total is
  decimal(19,6) (documented money), so the B3 cast probe runs for them.

Checked for every statement of both passes: T-SQL syntax (tests/sqlserver/tsql.py: batches split,
`EXEC('...')` unwrapped and parsed, no `exp.Command`, balanced parentheses); model SQL obeys the
view-body rules; non-ASCII text; every relation resolves in the session's database (the double
fails with Msg 208 otherwise, which is how a two-part name after a sticky `USE` would show);
index keys are indexable types (Msg 1919/1944). And H8: every write to history / current
state happens inside one transaction, with XACT_ABORT ON, committed after the insert.

Models are discovered from the manifest: a model added later is covered without touching this
file. What it cannot prove without a server: README "SQL Server".
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from dbt.adapters.sqlserver.sqlserver_runtime import (
    configure_runtime_state_for_test,
    reset_runtime_state_for_test,
)
from sqlglot import exp

from exigo_sync.catalog import LOOKUP_TABLES, REPLICATED_TABLES
from tests.dbt.helpers import (
    SENSITIVE_POLICY,
    DbtEnv,
    create_source,
    execute_source,
    failures,
)
from tests.dbt.scenario import T0, load_batch_one
from tests.sqlserver import tsql
from tests.sqlserver.catalogue import Catalogue, Relation, source_relations
from tests.sqlserver.catalogue_connection import CatalogueDriver, Executed

WAREHOUSE_DB = "exigo_warehouse"  # profiles.example.yml default database of the sqlserver target
LAYER_SCHEMAS = (
    "exigo_staging", "exigo_history", "exigo_current", "exigo_intermediate", "exigo_marts",
)  # fmt: skip
# Every table with a staging, history and current model: the replicated ones and the lookups.
ENTITY_TABLES = (*REPLICATED_TABLES, *LOOKUP_TABLES)
QUEUE_OVERRIDES = {
    ("queue", "Customers"): {"LoyaltyTier": "nvarchar(20)", "Email": "nvarchar(100)"},
    ("queue", "Orders"): {"Total": "decimal(19,6)"},
}


@pytest.fixture(scope="module")
def model_columns(tmp_path_factory) -> dict[str, list[tuple[str, str]]]:
    """Column names (and DuckDB types) of every model, from a DuckDB build of batch one."""
    env = DbtEnv(Path(tmp_path_factory.mktemp("duckdb_build")))
    create_source(env.source)
    execute_source(env.source, 'alter table queue."Customers" add column "LoyaltyTier" VARCHAR')
    load_batch_one(env)
    res = env.build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    rows = env.query(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = 'warehouse' and table_schema in "
        f"({', '.join(repr(s) for s in LAYER_SCHEMAS)}) order by table_name, ordinal_position"
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r["table_name"].lower(), []).append((r["column_name"], r["data_type"]))
    return out


def fixture_catalogue(model_columns) -> Catalogue:
    cat = Catalogue(model_columns)
    for rel in source_relations(WAREHOUSE_DB, QUEUE_OVERRIDES):
        cat.add(rel)
    cat.add_schema(WAREHOUSE_DB, "dbo")
    cat.policy = {
        (table, column): treatment
        for table, columns in SENSITIVE_POLICY.items()
        for column, treatment in columns.items()
    }
    return cat


class Pass:
    def __init__(self, name: str, driver: CatalogueDriver, result, manifest: dict):
        self.name, self.driver, self.result, self.manifest = name, driver, result, manifest


def run_sqlserver(env: DbtEnv, cat: Catalogue, name: str, batch_id: int, hours: int) -> Pass:
    driver = CatalogueDriver(cat, WAREHOUSE_DB)
    cat.landed_batch = batch_id  # the flow pinned this batch's snapshot before dbt runs
    configure_runtime_state_for_test(pyodbc_module=driver)
    try:
        res = env.invoke(
            "build",
            "--target",
            "sqlserver",
            "--exclude-resource-type",
            "unit_test",
            "--threads",
            "1",
            batch_id=batch_id,
            refreshed_at=T0 + timedelta(hours=hours),
        )
    finally:
        reset_runtime_state_for_test()
    manifest = json.loads((env.target_path / "manifest.json").read_text())
    return Pass(name, driver, res, manifest)


@pytest.fixture(scope="module")
def passes(model_columns, tmp_path_factory) -> dict[str, Pass]:
    env = DbtEnv(Path(tmp_path_factory.mktemp("sqlserver_render")))
    cat = fixture_catalogue(model_columns)
    first = run_sqlserver(env, cat, "first build", 1, 1)
    assert first.result.success, failures(first.result)
    # Between the batches the source gained LoyaltyTier (history/current miss it) and a column
    # was narrower in the warehouse than the model now makes it.
    for schema, model in (
        ("exigo_history", "customers_history"),
        ("exigo_current", "customers_current"),
    ):
        rel = cat.get(WAREHOUSE_DB, schema, model)
        assert rel.column("loyalty_tier") is not None, model
        rel.columns = [c for c in rel.columns if c.name != "loyalty_tier"]
    email = cat.get(WAREHOUSE_DB, "exigo_current", "customers_current").column("email")
    email.type = "nvarchar(20)"
    second = run_sqlserver(env, cat, "incremental", 2, 3)
    return {"first": first, "incremental": second}


def models(p: Pass) -> dict[str, dict]:
    return {
        n["name"]: n
        for n in p.manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["enabled"]
    }


def test_both_passes_build_every_node(passes):
    for p in passes.values():
        assert p.result.success, (p.name, failures(p.result))
        statuses = {r.node.unique_id: str(r.status) for r in p.result.result.results}
        found = models(p)
        assert len(found) >= 23, sorted(found)
        for node in found.values():
            assert statuses.get(node["unique_id"]) == "success", (p.name, node["unique_id"])


def test_every_model_runs_as_a_view_body(passes):
    """Each model's SQL reached the server as a view body: `CREATE OR ALTER VIEW <model>..._vw AS
    <sql>` for tables and incremental models, the view itself for view models (the marts)."""
    for p in passes.values():
        created = set()
        for e in p.driver.executed:
            m = re.match(
                r'CREATE (?:OR ALTER )?VIEW "[^"]+"\."([^"]+?)(__dbt_tmp)?(__dbt_tmp_vw)?"', e.text
            )
            if m:
                created.add(m.group(1))
        assert set(models(p)) <= created, (p.name, sorted(set(models(p)) - created))


class Checked:
    def __init__(self, report: tsql.Report, problems: list[str]):
        self.report, self.problems = report, problems


def check_all(p: Pass) -> Checked:
    report = tsql.Report()
    problems = []
    for batch in p.driver.batches:
        try:
            tsql.check_batch(batch.sql, report)
        except tsql.TsqlError as e:
            problems.append(f"[{batch.node_id}] {e}")
    return Checked(report, problems)


@pytest.fixture(scope="module")
def checked(passes) -> dict[str, Checked]:
    return {name: check_all(p) for name, p in passes.items()}


@pytest.fixture(scope="module")
def reports(checked) -> dict[str, tsql.Report]:
    return {name: c.report for name, c in checked.items()}


def test_every_statement_parses_as_tsql(passes, checked, capsys):
    for name, c in checked.items():
        p, report = passes[name], c.report
        with capsys.disabled():
            print(
                f"\n{p.name}: {len(models(p))} models, {len(p.driver.batches)} batches, "
                f"{len(report.parsed)} statements parsed by sqlglot "
                f"({sum(1 for x in report.parsed if x.in_exec)} inside EXEC('...'), "
                f"{sum(1 for _ in report.views())} view bodies), "
                f"not handed to sqlglot: {report.unparsed or 'none'}"
            )
        assert not c.problems, f"{p.name}: {len(c.problems)} batches fail:\n\n" + "\n\n".join(
            c.problems
        )
        assert len(report.parsed) > 100
        assert set(report.unparsed) <= set(tsql.UNPARSED_BY_SQLGLOT)


def test_model_sql_obeys_the_view_body_rules(reports):
    problems = []
    for name, report in reports.items():
        for parsed, create in report.views():
            for problem in tsql.view_body_problems(create, parsed.leaf):
                problems.append(f"{name}: {create.this.sql('tsql')}: {problem}")
    assert not problems, "\n".join(problems)


def test_non_ascii_text_is_n_prefixed_or_absent(reports):
    problems = [
        f"{name}: {problem}\n  in: {parsed.leaf.text[:200]}"
        for name, report in reports.items()
        for parsed in report.parsed
        for problem in tsql.literal_problems(parsed)
    ]
    assert not problems, "\n".join(problems)


def test_hash_input_cannot_be_cut_at_8000_bytes(passes, reports):
    """H1 on SQL Server: T-SQL CONCAT returns at most 8000 bytes unless an argument is a max
    type. Every CONCAT inside a HASHBYTES input starts with an explicit (n)varchar(max)
    argument, so no row hash input is truncated, however long the row."""
    for name, report in reports.items():
        hashed = 0
        for parsed in report.parsed:
            for digest in parsed.tree.find_all(exp.SHA2, exp.SHA, exp.MD5) if parsed.tree else ():
                concats = list(digest.find_all(exp.Concat))
                assert concats, (name, digest.sql("tsql")[:200])
                for concat in concats:
                    first = concat.expressions[0]
                    assert isinstance(first, exp.Cast) and first.to.sql("tsql").endswith("(MAX)"), (
                        name,
                        concat.sql("tsql")[:200],
                    )
                hashed += 1
        staging = [m for m in models(passes[name]) if m.startswith("stg_exigo__")]
        assert hashed >= len(staging) == len(ENTITY_TABLES), (name, hashed)


def merge_models(p: Pass) -> dict[str, dict]:
    """The history and current-state models (H8's subject)."""
    return {
        name: n
        for name, n in models(p).items()
        if n["config"]["materialized"] == "incremental"
        and n["schema"] in ("exigo_history", "exigo_current")
    }


_WRITE = re.compile(
    r"^(delete\s+from|insert\s+into|update|alter\s+table|truncate\s+table)\s+"
    r'"([^"]+)"\."([^"]+)"\."([^"]+)"',
    re.IGNORECASE,
)
_RENAME_COLUMN = re.compile(r"^exec\s+sp_rename\s+'([^.']+)\.([^.']+)\.([^.']+)\.", re.IGNORECASE)


def writes_to(p: Pass, schema: str, name: str) -> list[Executed]:
    """Statements that change the table `schema.name` itself (not its __dbt_tmp or backup)."""
    out = []
    for e in p.driver.executed:
        m = _WRITE.match(e.text.strip()) or _RENAME_COLUMN.match(e.text.strip())
        if m and (m.group(m.lastindex - 1), m.group(m.lastindex)) == (schema, name):
            out.append(e)
    return out


def _ends_transaction(e: Executed) -> bool:
    return bool(re.match(r"(COMMIT|ROLLBACK)\b", e.text.strip(), re.I)) and e.trancount == 1


def test_h8_history_and_current_writes_are_one_transaction(passes):
    """H8 as far as the client decides it: on the incremental pass, every statement that
    changes a history or current-state table (ALTER for new / wider columns, DELETE, INSERT) runs
    inside a transaction the adapter opened (`dbt_sqlserver_use_dbt_transactions`), on a
    connection with XACT_ABORT ON, and that transaction is committed only after the last of them
    (no COMMIT or ROLLBACK in between). On the first pass the only write is the single
    `SELECT * INTO` that creates the table."""
    p = passes["incremental"]
    found = merge_models(p)
    assert len(found) == 2 * len(ENTITY_TABLES), sorted(found)  # a history + a current each
    for name, node in found.items():
        writes = writes_to(p, node["schema"], name)
        kinds = [e.text.split()[0].lower() for e in writes]
        assert {"delete", "insert"} <= set(kinds), (name, kinds)
        assert len({e.connection for e in writes}) == 1, name
        bad = [
            (w.text[:60], w.trancount, w.xact_abort)
            for w in writes
            if not (w.trancount and w.xact_abort)
        ]
        assert not bad, (name, bad)
        first = p.driver.executed.index(writes[0])
        last = p.driver.executed.index(writes[-1])
        conn = writes[0].connection
        ends = [
            e
            for e in p.driver.executed[first:last]
            if e.connection == conn and _ends_transaction(e)
        ]
        assert not ends, (name, [e.text for e in ends])
        after = [
            e
            for e in p.driver.executed[last + 1 :]
            if e.connection == conn and _ends_transaction(e)
        ]
        assert after and after[0].text.upper().startswith("COMMIT"), (name, after[:1])
    first_pass = passes["first"]
    for name, node in merge_models(first_pass).items():
        assert not writes_to(first_pass, node["schema"], name), name


def test_incremental_pass_renders_the_merge_statements(passes):
    p = passes["incremental"]
    texts = [e.text.strip() for e in p.driver.executed]
    for name, node in merge_models(p).items():
        schema = node["schema"]
        view = f'CREATE OR ALTER VIEW "{schema}"."{name}__dbt_tmp__dbt_tmp_vw" AS'
        assert any(t.startswith(view) for t in texts), name
        temp = f'"{WAREHOUSE_DB}"."{schema}"."{name}__dbt_tmp"'
        assert any(t.startswith(f"SELECT * INTO {temp} FROM") for t in texts), name
        kinds = [e.text.split()[0].lower() for e in writes_to(p, schema, name)]
        assert kinds.index("delete") < kinds.index("insert"), (name, kinds)
    for schema, name in (
        ("exigo_history", "customers_history"),
        ("exigo_current", "customers_current"),
    ):
        alters = [e.text for e in writes_to(p, schema, name) if e.text.lower().startswith("alter")]
        assert any(
            re.search(r'\badd\s+"loyalty_tier"\s+nvarchar\(20\)', a, re.I) for a in alters
        ), f"{name}: no ALTER TABLE ADD for the new column (append_new_columns): {alters}"
    # The wider email: dbt-sqlserver's add / update / drop / sp_rename sequence. The model config
    # prefer_single_alter_column does not reach it (expand_target_column_types calls the
    # alter_column_type macro from Python, where config.get returns the default); H8 holds
    # because the sequence runs inside the model's transaction (test above).
    texts = [e.text for e in writes_to(p, "exigo_current", "customers_current")]
    assert any(re.search(r'add\s+"email__dbt_alter"\s+nvarchar\(50\)', t, re.I) for t in texts), (
        texts
    )


def test_incremental_temp_build_runs_outside_the_merge_transaction(passes):
    """dbt-sqlserver 1.11 builds the `__dbt_tmp` view and table outside the model's transaction
    (catalog locks held to commit deadlock a second worker, error 1205), so the project's
    compile-time introspection must not leave a transaction open (exigo_end_read_transaction)."""
    p = passes["incremental"]
    for name, node in merge_models(p).items():
        temp = [
            e
            for e in p.driver.executed
            if f'"{node["schema"]}"."{name}__dbt_tmp' in e.text
            and re.match(r"(CREATE OR ALTER VIEW|SELECT \* INTO)", e.text.strip())
        ]
        assert len(temp) == 2, (name, [t.text[:60] for t in temp])
        assert all(e.trancount == 0 for e in temp), (
            name,
            [(t.text[:60], t.trancount) for t in temp],
        )


def test_every_string_column_is_unicode(passes):
    """Strings the warehouse stores are nvarchar (`dbt_sqlserver_use_native_string_types` makes
    dbt.type_string() VARCHAR(MAX), which is not Unicode: the project uses exigo_type_string()).
    The one exception is row_hash: 64 hex digits."""
    cat = passes["incremental"].driver.catalogue
    bad = []
    for name, node in models(passes["incremental"]).items():
        rel = cat.get(WAREHOUSE_DB, node["schema"], node["alias"])
        for c in rel.columns:
            if re.match(r"(var)?char\b", c.type) and c.name != "row_hash":
                bad.append(f"{name}.{c.name} {c.type}")
    assert not bad, bad


def test_physical_design_reached_the_server(passes):
    """The as_columnstore / indexes configs, as the double's catalogue holds them after both
    passes (index keys were checked as SQL Server checks them when they were created). Marts are
    views over the current tables: no storage of their own."""
    cat = passes["incremental"].driver.catalogue
    for name, node in models(passes["incremental"]).items():
        rel: Relation = cat.get(WAREHOUSE_DB, node["schema"], node["alias"])
        assert rel is not None, name
        kinds = sorted((i.kind, tuple(i.columns), i.unique) for i in rel.indexes)
        columnstore = [k for k in kinds if "columnstore" in k[0]]
        if node["schema"] == "exigo_marts":
            assert rel.kind == "view" and not kinds, (name, rel.kind, kinds)
        else:
            assert not columnstore, (name, kinds)
        if node["schema"] == "exigo_history":
            assert ("clustered", ("history_version_id",), True) in kinds, (name, kinds)
        if node["schema"] == "exigo_current":
            assert [k for k in kinds if k[0] == "clustered" and k[2]], (name, kinds)


def test_b3_probe_reads_the_pinned_queue_copy_and_checks_length(passes):
    probes = [b.sql for b in passes["incremental"].driver.batches if "bad_value from (" in b.sql]
    customers = [s for s in probes if '"Customers"' in s]
    assert customers, "no B3 probe for queue.Customers (Email is wider than documented)"
    assert f'"{WAREHOUSE_DB}"."exigo_landing"."Customers"' in customers[0]
    assert re.search(r"datalength\(.*\[Email\]", customers[0], re.I | re.S), customers[0]


def test_fixture_deviations_are_what_the_docstring_says():
    documented = {c.name: c.sql_type for c in REPLICATED_TABLES["Customers"].columns}
    assert "LoyaltyTier" not in documented and documented["Email"] == "nvarchar(50)"
