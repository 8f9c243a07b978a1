"""The sandbox's dbt profile (deploy/sqlserver/profiles.sandbox.yml), short of a server.

Proven here: every key is one dbt-sqlserver 1.11 accepts (read from the installed adapter's
credentials class), no password has a default, exigo-sync resolves each warehouse target to the
topology the file says (co-located on the same server, landed into DuckDB or when forced) with
the source's own login, and `dbt parse` (no connection needed) places the models in
ExigoWarehouse (separate database) or ExigoSync (co-located) and reads the sources from
ExigoSync.

Only a live server proves: that dbt-sqlserver connects with it (driver name, encryption, trust of
the self-signed certificate) and that `dbt build` runs with the warehouse login's rights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from deploy.sqlserver import generate_sql as gen
from tests.dbt.helpers import DbtEnv, failures

PROFILE_FILE = gen.HERE / "profiles.sandbox.yml"
PROFILE = yaml.safe_load(PROFILE_FILE.read_text())["exigo_sync"]
TOPOLOGIES = {"sandbox_separate": "ExigoWarehouse", "sandbox_colocated": "ExigoSync"}
ENV = {
    "EXIGO_SYNC_MSSQL_PASSWORD": "not-a-secret-but-long",
    "EXIGO_SYNC_SOURCE_PASSWORD": "another-not-a-secret",
}


def test_profile_keys_are_dbt_sqlserver_keys():
    from dbt.adapters.sqlserver.sqlserver_credentials import SQLServerCredentials

    accepted = {f.name for f in dataclasses.fields(SQLServerCredentials)}
    accepted |= set(SQLServerCredentials._ALIASES) | {"type", "threads"}
    assert set(PROFILE["outputs"]) == {*TOPOLOGIES, "source", "sandbox_duckdb"}
    for name, output in PROFILE["outputs"].items():
        if output["type"] == "sqlserver":
            assert set(output) <= accepted, (name, set(output) - accepted)


@pytest.mark.parametrize(
    ("target", "forced", "expected"),
    [
        ("sandbox_colocated", "auto", "colocated"),
        ("sandbox_separate", "auto", "colocated"),
        ("sandbox_separate", "landed", "landed"),
        ("sandbox_duckdb", "auto", "landed"),
    ],
)
def test_profile_resolves_each_topology(monkeypatch, tmp_path, target, forced, expected):
    from exigo_sync.topology import resolve_topology

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "profiles.yml").write_text(PROFILE_FILE.read_text())
    topology = resolve_topology(tmp_path, "exigo_sync", target=target, topology=forced)
    assert topology.name == expected
    assert topology.source.name == "source" and topology.source_database == gen.SYNC_DATABASE
    assert topology.source.config["user"] == gen.SOURCE_LOGIN
    if topology.warehouse.type == "sqlserver":
        assert topology.warehouse.config["database"] == TOPOLOGIES[target]
        assert topology.warehouse.config["user"] == gen.WAREHOUSE_LOGIN
    for secret in ENV.values():
        assert secret not in repr(topology)


def test_profile_password_has_no_default():
    """Checked on the text: a password whose variable is missing must not fall back to
    anything (exigo-sync refuses an output whose template did not render)."""
    passwords = {
        name: output.get("password")
        for name, output in PROFILE["outputs"].items()
        if output["type"] == "sqlserver"
    }
    assert passwords.pop("source") == "{{ env_var('EXIGO_SYNC_SOURCE_PASSWORD') }}"
    assert set(passwords.values()) == {"{{ env_var('EXIGO_SYNC_MSSQL_PASSWORD') }}"}


@pytest.mark.parametrize("target", sorted(TOPOLOGIES))
def test_dbt_parse_places_models_and_sources_per_topology(target, tmp_path: Path):
    env = DbtEnv(tmp_path)
    (env.profiles_dir / "profiles.yml").write_text(PROFILE_FILE.read_text())
    res = env.invoke("parse", "--target", target, env=ENV)
    assert res.success, failures(res)
    manifest = res.result
    models = [n for n in manifest.nodes.values() if n.resource_type == "model"]
    assert models and {m.database for m in models} == {TOPOLOGIES[target]}
    assert {m.schema for m in models} >= {"exigo_staging", "exigo_history", "exigo_current"}
    assert {m.schema for m in models} <= set(gen.warehouse_schemas())
    sources = list(manifest.sources.values())
    # R3: dbt reads only the batch's pinned copy, in the warehouse database's landing schemas,
    # whatever the topology (the copy, not dbt, reaches into the sync database).
    assert sources and {s.database for s in sources} == {TOPOLOGIES[target]}
    assert {s.schema for s in sources} == {"exigo_landing", "exigo_landing_dbo"}
