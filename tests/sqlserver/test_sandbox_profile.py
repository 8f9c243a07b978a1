"""The sandbox's dbt profile (deploy/sqlserver/profiles.sandbox.yml), short of a server.

Proven here: every key is one dbt-sqlserver 1.11 accepts (read from the installed adapter's
credentials class), the password has no default, exigo-sync's own profile reader renders both
topologies, and `dbt parse` (no connection needed) places the models in ExigoWarehouse
(separate topology) or ExigoSync (co-located) and reads the sources from ExigoSync.

Only a live server proves: that dbt-sqlserver connects with it (driver name, encryption, trust of
the self-signed certificate) and that `dbt build` runs with the warehouse login's rights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from deploy.sqlserver import generate_sql as gen
from exigo_sync.profiles import load_target
from tests.dbt.helpers import DbtEnv, failures

PROFILE_FILE = gen.HERE / "profiles.sandbox.yml"
PROFILE = yaml.safe_load(PROFILE_FILE.read_text())["exigo_sync"]
TOPOLOGIES = {"sandbox_separate": "ExigoWarehouse", "sandbox_colocated": "ExigoSync"}
ENV = {"EXIGO_SYNC_MSSQL_PASSWORD": "not-a-secret-but-long"}


def test_profile_keys_are_dbt_sqlserver_keys():
    from dbt.adapters.sqlserver.sqlserver_credentials import SQLServerCredentials

    accepted = {f.name for f in dataclasses.fields(SQLServerCredentials)}
    accepted |= set(SQLServerCredentials._ALIASES) | {"type", "threads"}
    assert set(PROFILE["outputs"]) == set(TOPOLOGIES)
    for name, output in PROFILE["outputs"].items():
        assert set(output) <= accepted, (name, set(output) - accepted)
        assert output["type"] == "sqlserver"


def test_profile_renders_both_topologies(monkeypatch, tmp_path):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "profiles.yml").write_text(PROFILE_FILE.read_text())
    for target, database in TOPOLOGIES.items():
        t = load_target(tmp_path, "exigo_sync", target)
        assert t.type == "sqlserver"
        assert t.config["database"] == database
        assert t.config["schema"] == "exigo_sync"
        assert t.config["user"] == gen.WAREHOUSE_LOGIN
        assert str(t.config["port"]) == "1433"
        assert "not-a-secret-but-long" not in repr(t)


def test_profile_password_has_no_default():
    """Checked on the text: dbt keeps a password whose template fails to render as the literal
    template (SecretRenderer), so a missing variable only shows as a failed login."""
    for output in PROFILE["outputs"].values():
        assert output["password"] == "{{ env_var('EXIGO_SYNC_MSSQL_PASSWORD') }}"


@pytest.mark.parametrize("target", sorted(TOPOLOGIES))
def test_dbt_parse_places_models_and_sources_per_topology(target, tmp_path: Path):
    env = DbtEnv(tmp_path)
    (env.profiles_dir / "profiles.yml").write_text(PROFILE_FILE.read_text())
    res = env.invoke(
        "parse",
        "--target",
        target,
        env=ENV,
        extra_vars={"exigo_source_database": gen.SYNC_DATABASE},
    )
    assert res.success, failures(res)
    manifest = res.result
    models = [n for n in manifest.nodes.values() if n.resource_type == "model"]
    assert models and {m.database for m in models} == {TOPOLOGIES[target]}
    assert {m.schema for m in models} >= {"exigo_staging", "exigo_history", "exigo_current"}
    assert {m.schema for m in models} <= set(gen.warehouse_schemas())
    sources = list(manifest.sources.values())
    assert sources and {s.database for s in sources} == {gen.SYNC_DATABASE}
    assert {s.schema for s in sources} == {"queue", "dbo"}
