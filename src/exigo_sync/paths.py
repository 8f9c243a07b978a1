"""Where exigo-sync finds what it ships and where it keeps its state, whatever the working
directory: in a checkout, and installed from a wheel with no checkout at all.

- The dbt project and the example profile: in a checkout, `dbt_project/` and
  `profiles.example.yml` at the repository root (edited there, used in place); in an installed
  wheel, copies of them inside the package (`exigo_sync/_data/`, put there by the build:
  setup.py), found through importlib.resources.
- State (dbt's target and log folders, Prefect's home): in a checkout, where the Makefile and
  the tests have always kept it (`dbt_project/target`, `dbt_project/logs`, `.prefect`); installed,
  under `$XDG_STATE_HOME/exigo-sync` (default `~/.local/state/exigo-sync`): never inside
  site-packages, never relative to the working directory.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# The repository root when the package runs from a checkout (src/exigo_sync/paths.py -> ../../).
REPO_ROOT = Path(__file__).resolve().parents[2]
# What the build copies into the package (setup.py), under exigo_sync/_data/.
DATA_PACKAGE_DIR = "_data"
DBT_PROJECT = "dbt_project"
EXAMPLE_PROFILE = "profiles.example.yml"


def in_checkout() -> bool:
    """True when this package is the `src/exigo_sync` of a repository checkout (an editable
    install, PYTHONPATH=src), False when installed from a wheel."""
    return (REPO_ROOT / DBT_PROJECT / "dbt_project.yml").is_file() and (
        REPO_ROOT / "src" / "exigo_sync" / "paths.py"
    ).is_file()


def _bundled(name: str) -> Path:
    return Path(str(resources.files("exigo_sync").joinpath(DATA_PACKAGE_DIR).joinpath(name)))


def dbt_project_dir() -> Path:
    """The dbt project: the checkout's `dbt_project/`, else the copy shipped in the package."""
    return REPO_ROOT / DBT_PROJECT if in_checkout() else _bundled(DBT_PROJECT)


def example_profile() -> Path:
    """The example dbt profile (`profiles.example.yml`)."""
    return REPO_ROOT / EXAMPLE_PROFILE if in_checkout() else _bundled(EXAMPLE_PROFILE)


def state_dir() -> Path:
    """exigo-sync's own state outside a checkout: `$XDG_STATE_HOME/exigo-sync`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser().resolve() / "exigo-sync"


def dbt_target_dir() -> Path:
    """dbt's default --target-path (its artifacts, the partial parse, the docs site)."""
    return REPO_ROOT / DBT_PROJECT / "target" if in_checkout() else state_dir() / "dbt-target"


def dbt_log_dir() -> Path:
    """dbt's default --log-path (dbt.log, at the dbt_log_level_file setting and above)."""
    return REPO_ROOT / DBT_PROJECT / "logs" if in_checkout() else state_dir() / "dbt-logs"


def prefect_home() -> Path:
    """The PREFECT_HOME exigo-sync's commands use unless one is set: the checkout's `.prefect`
    (what the Makefile sets too), else `<state dir>/prefect`."""
    return REPO_ROOT / ".prefect" if in_checkout() else state_dir() / "prefect"


def default_prefect_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """What a command adds to its environment before Prefect is imported, so that a shell run,
    `make demo` and `serve` keep Prefect's state (the private API's database, the run history the
    UI shows) in one place: PREFECT_HOME, unless the user set one. The user's Prefect profiles
    (`prefect cloud login`, `prefect config set PREFECT_API_URL=...`, kept in
    ~/.prefect/profiles.toml) still apply."""
    if environ.get("PREFECT_HOME"):
        return {}
    added = {"PREFECT_HOME": str(prefect_home())}
    user_profiles = Path.home() / ".prefect" / "profiles.toml"
    if not environ.get("PREFECT_PROFILES_PATH") and user_profiles.is_file():
        added["PREFECT_PROFILES_PATH"] = str(user_profiles)
    return added
