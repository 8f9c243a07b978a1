"""Project-level checks: the SQL Server target parses, docs generate, and the generated YAML /
catalogue macro are in step with src/exigo_sync/source/catalog.py."""

from __future__ import annotations

import importlib.util
import json

from exigo_sync.naming import column_name
from exigo_sync.source.catalog import REPLICATED_TABLES
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
    history = manifest["nodes"]["model.exigo_sync.customers_history"]["config"]
    assert (history["incremental_strategy"], history["full_refresh"], history["unique_key"]) == (
        "delete+insert",
        False,
        "history_version_id",
    )


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
    import yaml

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
