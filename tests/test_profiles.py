"""The dbt profile reader (exigo_sync.profiles): targets, the topology they give, and secrets
kept out of reprs and errors (S1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exigo_sync.profiles import ProfileError, load_target
from exigo_sync.settings import REPO_ROOT
from exigo_sync.topology import resolve_topology


def _profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_PATH", str(tmp_path / "src.duckdb"))
    monkeypatch.setenv("EXIGO_SYNC_WAREHOUSE_PATH", str(tmp_path / "wh.duckdb"))
    return tmp_path


def test_profile_gives_source_and_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = load_target(_profile(tmp_path, monkeypatch), "exigo_sync", "duckdb")
    assert t.warehouse_path() == tmp_path / "wh.duckdb"
    assert load_target(tmp_path, "exigo_sync", "simulator").warehouse_path() == (
        tmp_path / "src.duckdb"
    )
    topology = resolve_topology(tmp_path, "exigo_sync", target="duckdb")
    assert topology.name == "colocated" and topology.source_path() == tmp_path / "src.duckdb"
    assert topology.lock_name().startswith("exigo-sync-src-")
    with pytest.raises(ProfileError, match="not found"):
        load_target(tmp_path, "exigo_sync", "nope")


def test_s1_profile_errors_and_repr_hold_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Sup3r-Secret-Value-991"
    monkeypatch.setenv("EXIGO_SYNC_MSSQL_USER", "u")
    monkeypatch.setenv("EXIGO_SYNC_MSSQL_PASSWORD", secret)
    t = load_target(_profile(tmp_path, monkeypatch), "exigo_sync", "sqlserver")
    assert secret not in repr(t)
    assert t.scrub(f"login failed for u/{secret}") == "login failed for u/***"
    # A value that fails to render must not be quoted back in the error (dbt's message would).
    (tmp_path / "profiles.yml").write_text(
        "p:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n"
        "      threads: \"{{ env_var('EXIGO_SYNC_MSSQL_PASSWORD') | as_number }}\"\n"
    )
    with pytest.raises(ProfileError) as err:
        load_target(tmp_path, "p")
    assert secret not in str(err.value) and "EXIGO_SYNC_MSSQL_PASSWORD" in str(err.value)


def test_s1_a_password_variable_that_is_missing_is_named_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt leaves a secret whose env var is missing as its template text (it would go to the
    server as the password and fail as a login error): refused, naming the variable."""
    monkeypatch.delenv("EXIGO_SYNC_SOURCE_PASSWORD", raising=False)
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_USER", "reader")
    with pytest.raises(
        ProfileError, match="`password` did not render: set EXIGO_SYNC_SOURCE_PASSWORD"
    ):
        load_target(_profile(tmp_path, monkeypatch), "exigo_sync", "source")
