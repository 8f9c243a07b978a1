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


def test_a_relative_duckdb_path_is_under_the_profiles_folder_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example profile's defaults are relative (data/warehouse.duckdb): they name files
    under the folder holding profiles.yml, whatever the working directory; attachments too.
    dbt runs in that folder, where dbt-duckdb resolves them the same way (dbt_runner)."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "p:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: data/wh.duckdb\n"
        "      attach:\n        - {path: ../src.duckdb, alias: exigo}\n"
        "    mem:\n      type: duckdb\n      path: ':memory:'\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = load_target(profiles, "p")
    assert target.warehouse_path() == profiles / "data" / "wh.duckdb"
    assert target.source_path() == tmp_path / "src.duckdb"
    assert target.profile_file == profiles / "profiles.yml"
    assert load_target(profiles, "p", "mem").config["path"] == ":memory:"


def test_the_example_profiles_defaults_resolve_against_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    monkeypatch.delenv("EXIGO_SYNC_WAREHOUSE_PATH", raising=False)
    monkeypatch.delenv("EXIGO_SYNC_TARGET", raising=False)
    monkeypatch.chdir(REPO_ROOT)
    target = load_target(tmp_path, "exigo_sync")
    assert target.warehouse_path() == tmp_path / "data" / "warehouse.duckdb"
    assert "EXIGO_SYNC_WAREHOUSE_PATH" in target.path_hint()


def test_one_name_for_the_warehouse_target_exigo_sync_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings' EXIGO_SYNC_TARGET is also what the example profile's `target:` reads."""
    _profile(tmp_path, monkeypatch)
    monkeypatch.setenv("EXIGO_SYNC_TARGET", "duckdb_local")
    assert load_target(tmp_path, "exigo_sync").name == "duckdb_local"
    assert "EXIGO_SYNC_DBT_TARGET" not in (REPO_ROOT / "profiles.example.yml").read_text()


def test_a_target_typo_names_the_profile_file_and_its_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _profile(tmp_path, monkeypatch)
    with pytest.raises(ProfileError) as flag:
        load_target(tmp_path, "exigo_sync", "duckbd")
    message = str(flag.value)
    assert (
        f"of {tmp_path / 'profiles.yml'}" in message and "--target / EXIGO_SYNC_TARGET" in message
    )
    assert "duckdb, simulator, duckdb_local" in message
    monkeypatch.setenv("EXIGO_SYNC_TARGET", "duckbd")  # the profile's `target:` reads it
    with pytest.raises(
        ProfileError,
        match=r"from the `target:` of profile 'exigo_sync', which reads EXIGO_SYNC_TARGET",
    ):
        load_target(tmp_path, "exigo_sync")


def test_a_missing_profiles_file_names_the_folder_the_setting_and_the_example(
    tmp_path: Path,
) -> None:
    with pytest.raises(ProfileError) as missing:
        load_target(tmp_path, "exigo_sync")
    message = str(missing.value)
    assert f"no profiles.yml in {tmp_path}" in message and "EXIGO_SYNC_PROFILES_DIR" in message
    assert str(REPO_ROOT / "profiles.example.yml") in message
