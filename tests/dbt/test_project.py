"""Project-level checks: the SQL Server target parses, its dbt-sqlserver behaviour flags are set and
mean what the project relies on, docs generate, and the generated YAML / catalogue macro are in
step with src/exigo_sync/catalog.py."""

from __future__ import annotations

import importlib.util
import json

import yaml

from exigo_sync.catalog import LOOKUP_ENTITY_NAMES, LOOKUPS_TAG, REPLICATED_TABLES
from exigo_sync.naming import column_name
from tests.dbt.helpers import PROJECT_DIR, failures


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_yaml", PROJECT_DIR / "scripts" / "generate_yaml.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_for_sqlserver_target(dbt_env):
    """No server here: parse must still succeed (profile renders, dispatch macros resolve)."""
    res = dbt_env.invoke("parse", "--target", "sqlserver")
    assert res.success, failures(res)
    manifest = json.loads((dbt_env.target_path / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "sqlserver"
    node = manifest["nodes"]["model.exigo_sync.customers_history"]
    history = node["config"]
    assert (history["incremental_strategy"], history["full_refresh"], history["unique_key"]) == (
        "delete+insert",
        False,
        "history_version_id",
    )
    # Physical design (README "SQL Server"): rowstore, history_version_id the clustered key.
    assert history["as_columnstore"] is False
    assert history["indexes"][0] == {
        "columns": ["history_version_id"],
        "type": "clustered",
        "unique": True,
    }
    # dbt_sqlserver_use_default_schema_concat is on (the 1.12 default): the project's own
    # generate_schema_name still wins, schemas are used as-is.
    assert node["schema"] == "exigo_history"


def test_sqlserver_physical_design_is_absent_on_duckdb(dbt_env):
    """The indexes config is empty for DuckDB (dbt-duckdb would build ART indexes from it);
    as_columnstore is a key dbt-duckdb never reads."""
    res = dbt_env.invoke("parse")
    assert res.success, failures(res)
    manifest = json.loads((dbt_env.target_path / "manifest.json").read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            assert not node["config"].get("indexes"), node["unique_id"]


SQLSERVER_FLAGS = {
    "dbt_sqlserver_use_dbt_transactions": True,
    "dbt_sqlserver_use_native_string_types": True,
    "dbt_sqlserver_use_default_schema_concat": True,
    "dbt_sqlserver_enable_safe_type_expansion": False,
}


def test_sqlserver_behaviour_flags_are_set(dbt_env):
    """The flags as dbt_project.yml sets them and as the adapter reads them back."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert {k: project["flags"][k] for k in SQLSERVER_FLAGS} == SQLSERVER_FLAGS
    probes = "|".join(f"{{{{ adapter.behavior.{k}.setting }}}}" for k in SQLSERVER_FLAGS)
    assert _compile_sqlserver(dbt_env, probes).split("|") == [
        str(v) for v in SQLSERVER_FLAGS.values()
    ]


def test_native_string_types_flag_does_not_make_type_string_unicode(dbt_env):
    """What dbt_sqlserver_use_native_string_types really changes, read from the adapter at test
    time: dbt.type_string() becomes VARCHAR(MAX) (from VARCHAR(8000)), not NVARCHAR. The project
    therefore uses its own exigo_type_string() (nvarchar(max)) for text it stores. If an adapter
    upgrade changes either answer, this fails."""
    rendered = _compile_sqlserver(
        dbt_env,
        "{{ dbt.type_string() }}|{{ api.Column.translate_type('nvarchar') }}|"
        "{{ exigo_type_string() }}|{{ exigo_version_id_type() }}",
    )
    assert rendered.split("|") == [
        "VARCHAR(MAX)",
        "NVARCHAR(4000)",
        "nvarchar(max)",
        "nvarchar(400)",
    ]


def test_dbt_transactions_flag_makes_begin_and_commit_real(dbt_env):
    """What dbt_sqlserver_use_dbt_transactions really changes, read from the adapter at test
    time: with it, the connection manager sends BEGIN TRANSACTION / COMMIT and rolls back with
    ROLLBACK; without it, begin and commit send nothing and the driver autocommits each
    statement (so a failing INSERT after the DELETE of a delete+insert loses rows: H8)."""
    from dbt.adapters.sqlserver.sqlserver_connections import SQLServerConnectionManager

    _compile_sqlserver(dbt_env, "select 1 as x")  # the adapter reads the project's flags
    assert SQLServerConnectionManager._dbt_sqlserver_use_dbt_transactions is True

    class Recorder:
        def __init__(self, flag: bool):
            self._dbt_sqlserver_use_dbt_transactions = flag
            self.sent: list[str] = []

        def add_query(self, sql: str, auto_begin: bool = True):
            self.sent.append(sql)

    on, off = Recorder(True), Recorder(False)
    for manager in (on, off):
        SQLServerConnectionManager.add_begin_query(manager)
        SQLServerConnectionManager.add_commit_query(manager)
    assert on.sent == ["BEGIN TRANSACTION", "IF @@TRANCOUNT > 0 COMMIT TRANSACTION"]
    assert off.sent == []


def _compile_sqlserver(dbt_env, inline: str) -> str:
    """`dbt compile --inline` for the sqlserver target: needs no connection."""
    res = dbt_env.invoke(
        "compile", "--target", "sqlserver", "--no-populate-cache", "--inline", inline
    )
    assert res.success, failures(res)
    return res.result.results[0].node.compiled_code.strip()


def test_docs_generate_documents_every_model(dbt_env):
    from datetime import datetime

    from tests.dbt.scenario import load_batch_one

    load_batch_one(dbt_env)
    res = dbt_env.build(1, datetime(2026, 1, 5, 9))
    assert res.success, failures(res)
    res = dbt_env.invoke("docs", "generate")
    assert res.success, failures(res)
    manifest = json.loads((dbt_env.target_path / "manifest.json").read_text())
    catalog = json.loads((dbt_env.target_path / "catalog.json").read_text())
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] != "model":
            continue
        assert node["description"], f"{uid} has no description"
        built = {c.lower() for c in catalog["nodes"][uid]["columns"]}
        documented = {c.lower() for c, meta in node["columns"].items() if meta["description"]}
        assert built <= documented, f"{uid}: undocumented columns {sorted(built - documented)}"


def test_generated_yaml_and_catalogue_macro_are_current():
    gen = _generator()

    expected = {
        "models/staging/_exigo__sources.yml": gen.sources(),
        "models/staging/_stg_exigo__models.yml": gen.staging_models(),
        "models/history/_history__models.yml": gen.history_models(),
        "models/current/_current__models.yml": gen.current_models(),
    }
    for path, doc in expected.items():
        assert yaml.safe_load((PROJECT_DIR / path).read_text()) == doc, (
            f"{path} is stale: run dbt_project/scripts/generate_yaml.py"
        )
    assert (PROJECT_DIR / "macros/exigo_catalog.sql").read_text() == gen.catalog_macro()


def test_snake_case_names():
    cases = {
        "CustomerID": "customer_id",
        "MainAddress1": "main_address1",
        "IsRMA": "is_rma",
        "Other10Total": "other10_total",
        "SMSSubscribeDate": "sms_subscribe_date",
        "EmailSubscribeIP": "email_subscribe_ip",
        "BillingAddress2_2": "billing_address2_2",
        "Url1Description": "url1_description",
        "BatchID": "source_batch_id",
    }
    assert {k: column_name(k) for k in cases} == cases
    names = [column_name(c.name) for t in REPLICATED_TABLES.values() for c in t.columns]
    per_table = [[column_name(c.name) for c in t.columns] for t in REPLICATED_TABLES.values()]
    assert all(len(set(n)) == len(n) for n in per_table), "two source columns share a name"
    assert names


def test_every_dispatched_macro_has_a_sqlserver_implementation(dbt_env):
    res = dbt_env.invoke("parse")
    assert res.success, failures(res)
    manifest = json.loads((dbt_env.target_path / "manifest.json").read_text())
    ours = {m["name"] for m in manifest["macros"].values() if m["package_name"] == "exigo_sync"}
    dispatched = {n.removeprefix("default__") for n in ours if n.startswith("default__")}
    assert {"exigo_type", "exigo_hash", "exigo_row_to_json", "exigo_text", "exigo_true"} <= (
        dispatched
    )
    missing = sorted(n for n in dispatched if f"sqlserver__{n}" not in ours)
    assert not missing, f"no sqlserver__ implementation for {missing}"


def test_lookups_tag_names_their_models_and_every_test_on_them_alone(dbt_env):
    """A batch leaves the lookups out by one tag (exigo_sync.lookup_contents): it must name each
    lookup's models and every data test whose parents are all lookup models (a test takes no
    tags from its model, so the generated YAML tags each), and nothing else."""
    res = dbt_env.invoke("parse")
    assert res.success, failures(res)
    manifest = json.loads((dbt_env.target_path / "manifest.json").read_text())
    lookup_models = {
        f"model.exigo_sync.{name}"
        for entity in LOOKUP_ENTITY_NAMES
        for name in (f"stg_exigo__{entity}", f"{entity}_history", f"{entity}_current")
    }
    tagged, on_lookups = set(), set()
    for uid, node in manifest["nodes"].items():
        if LOOKUPS_TAG in node["tags"]:
            tagged.add(uid)
        parents = set(node.get("depends_on", {}).get("nodes", []))
        if uid in lookup_models or (
            node["resource_type"] == "test" and parents and parents <= lookup_models
        ):
            on_lookups.add(uid)
    assert lookup_models <= manifest["nodes"].keys()
    assert sum(uid.startswith("test.") for uid in on_lookups) >= 3 * len(LOOKUP_ENTITY_NAMES)
    assert tagged == on_lookups
