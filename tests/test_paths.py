"""Where exigo-sync finds what it ships and keeps its state (exigo_sync.paths), in a checkout
and installed from a wheel; and the Prefect home every command shares."""

from __future__ import annotations

from pathlib import Path

import pytest

import exigo_sync
from exigo_sync import paths
from exigo_sync.settings import Settings


def test_in_a_checkout_the_dbt_project_and_example_profile_are_the_repositorys() -> None:
    assert paths.in_checkout()
    assert paths.dbt_project_dir() == paths.REPO_ROOT / "dbt_project"
    assert (paths.dbt_project_dir() / "dbt_project.yml").is_file()
    assert paths.example_profile() == paths.REPO_ROOT / "profiles.example.yml"
    assert paths.dbt_target_dir() == paths.REPO_ROOT / "dbt_project" / "target"
    assert paths.prefect_home() == paths.REPO_ROOT / ".prefect"  # what the Makefile sets


def test_installed_they_are_the_packages_copies_and_state_goes_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel has no checkout around it: the build's copies inside the package, and dbt's
    folders and Prefect's home under $XDG_STATE_HOME/exigo-sync, never in site-packages."""
    monkeypatch.setattr(paths, "in_checkout", lambda: False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    package = Path(exigo_sync.__file__).parent
    assert paths.dbt_project_dir() == package / "_data" / "dbt_project"
    assert paths.example_profile() == package / "_data" / "profiles.example.yml"
    state = tmp_path / "state" / "exigo-sync"
    assert paths.dbt_target_dir() == state / "dbt-target"
    assert paths.dbt_log_dir() == state / "dbt-logs"
    assert paths.prefect_home() == state / "prefect"
    invocation = Settings(profiles_dir=tmp_path).dbt_invocation("duckdb")
    assert (invocation.target_path, invocation.log_path) == (
        state / "dbt-target",
        state / "dbt-logs",
    )
    assert invocation.project_dir == package / "_data" / "dbt_project"


def test_commands_share_one_prefect_home_unless_one_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.default_prefect_environment({"PREFECT_HOME": "/mine"}) == {}
    assert paths.default_prefect_environment({}) == {"PREFECT_HOME": str(paths.prefect_home())}
    # The user's Prefect profiles (prefect cloud login, PREFECT_API_URL set with `prefect
    # config set`) keep applying.
    (tmp_path / ".prefect").mkdir()
    (tmp_path / ".prefect" / "profiles.toml").write_text('active = "default"\n')
    assert paths.default_prefect_environment({}) == {
        "PREFECT_HOME": str(paths.prefect_home()),
        "PREFECT_PROFILES_PATH": str(tmp_path / ".prefect" / "profiles.toml"),
    }


def test_relative_folders_in_settings_are_made_absolute_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXIGO_SYNC_PROFILES_DIR", "data/profiles")
    monkeypatch.setenv("EXIGO_SYNC_DBT_TARGET_PATH", "target")
    s = Settings.load()
    assert s.profiles_dir == tmp_path / "data" / "profiles"
    assert s.dbt_target_path == tmp_path / "target"
