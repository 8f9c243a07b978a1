"""Read the dbt profile/target: the one place where the source and the warehouse are configured.

The target is rendered with dbt's own renderer (`env_var()` and friends) so Python and dbt agree,
and Prefect block placeholders (`{{ prefect.blocks.secret.x }}`) are resolved the way
prefect-dbt resolves them. Rendered values may hold secrets: `Target` never prints them (S1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SOURCE_ALIAS = "exigo"


class ProfileError(RuntimeError):
    """The dbt profile cannot give us a source or a warehouse."""


@dataclass(frozen=True)
class Target:
    name: str
    type: str
    # repr=False: the rendered config may hold passwords and must never reach a log (S1).
    config: Mapping[str, Any] = field(repr=False)

    def warehouse_path(self) -> Path:
        """The DuckDB file of this output (its `path`): the warehouse, or a simulator file when
        the output is the source."""
        self._require_duckdb("warehouse")
        path = self.config.get("path")
        if not path or path == ":memory:":
            raise ProfileError(f"dbt target '{self.name}' has no DuckDB file `path`")
        return Path(str(path)).expanduser()

    def source_path(self) -> Path:
        """The simulator file a DuckDB warehouse attaches with alias `exigo` (co-located)."""
        self._require_duckdb("source")
        for entry in self.config.get("attach") or []:
            if isinstance(entry, Mapping) and entry.get("alias") == SOURCE_ALIAS:
                return Path(str(entry["path"])).expanduser()
        raise ProfileError(
            f"dbt target '{self.name}' has no `attach` entry with alias '{SOURCE_ALIAS}'"
        )

    def scrub(self, text: str) -> str:
        """Blank every secret of this target out of `text` (belt and braces for S1)."""
        for value in _secret_values(self.config):
            text = text.replace(value, "***")
        return text

    def _require_duckdb(self, what: str) -> None:
        if self.type != "duckdb":
            raise ProfileError(
                f"dbt target '{self.name}' is {self.type}: the {what} for it is not "
                "implemented yet (only duckdb is)"
            )


_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)


def _secret_values(config: Any, secret: bool = False) -> set[str]:
    if isinstance(config, Mapping):
        return set().union(
            *(
                _secret_values(v, secret or bool(_SECRET_KEY.search(str(k))))
                for k, v in config.items()
            )
        )
    if isinstance(config, list | tuple):
        return set().union(*(_secret_values(v, secret) for v in config))
    # Short values would blank out unrelated text; they are no real secret either.
    return {str(config)} if secret and config is not None and len(str(config)) >= 4 else set()


def _read_profile(profiles_dir: Path, profile: str) -> Mapping[str, Any]:
    path = Path(profiles_dir) / "profiles.yml"
    if not path.exists():
        raise ProfileError(
            f"no profiles.yml in {profiles_dir} (copy profiles.example.yml there, or set "
            "EXIGO_SYNC_PROFILES_DIR / DBT_PROFILES_DIR)"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path} is not valid YAML ({type(exc).__name__})") from None
    prof = data.get(profile)
    if not isinstance(prof, Mapping):
        raise ProfileError(f"profile '{profile}' not found in {path}")
    return prof


def profile_outputs(profiles_dir: Path, profile: str) -> list[str]:
    """The names of the profile's outputs (unrendered: nothing is resolved)."""
    return [str(name) for name in (_read_profile(profiles_dir, profile).get("outputs") or {})]


def load_target(profiles_dir: Path, profile: str, target: str | None = None) -> Target:
    prof = _read_profile(profiles_dir, profile)
    outputs = prof.get("outputs") or {}
    name = target or _render({"t": prof.get("target", "")})["t"]
    if name not in outputs:
        raise ProfileError(
            f"target '{name}' not found in profile '{profile}' (have: {', '.join(outputs)})"
        )
    config = _render(dict(outputs[name]))
    _refuse_unrendered(str(name), config)
    return Target(name=str(name), type=str(config.get("type", "")), config=config)


_ENV_VAR_NAME = re.compile(r"env_var\(\s*['\"]([^'\"]+)['\"]")


def _refuse_unrendered(output: str, config: Mapping[str, Any]) -> None:
    """dbt keeps a secret whose template failed to render (a missing environment variable) as
    the template text itself, which would only show up as a failed login: refuse it here,
    naming the key and the variable (never a value)."""
    for key, value in config.items():
        if isinstance(value, str) and "{{" in value and "}}" in value:
            names = ", ".join(_ENV_VAR_NAME.findall(value)) or "the template"
            raise ProfileError(
                f"output '{output}' of the dbt profile: `{key}` did not render: set {names}"
            )


def _render(data: dict[str, Any]) -> dict[str, Any]:
    """Render with dbt's profile renderer; messages name variables, never values."""
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    if "prefect." in yaml.safe_dump(data):
        data = _resolve_prefect_placeholders(data)
    # dbt's env_var() reads the invocation context, which only exists inside a dbt run.
    set_invocation_context(dict(os.environ))
    try:
        return ProfileRenderer({}).render_data(data)
    except Exception as exc:
        last = str(exc).strip().splitlines()[-1].strip()
        # "Could not render {{ tpl }}: <cause>": the cause may quote the rendered value, which
        # can be a secret (S1); the template names the variable, which is enough to act on.
        if last.startswith("Could not render") and "}}" in last:
            last = last[: last.index("}}") + 2] + " (check that variable's value)"
        raise ProfileError(f"cannot render the dbt profile: {last}") from None


def _resolve_prefect_placeholders(data: dict[str, Any]) -> dict[str, Any]:
    """Resolve `{{ prefect.blocks.<type>.<name> }}` and `{{ prefect.variables.<name> }}` as
    prefect-dbt does: a block's value goes into an environment variable of this process
    (inherited by dbt's child process) and the profile refers to it by `env_var()`, so the
    secret itself never appears in rendered text."""
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.utilities.templating import (
        resolve_block_document_references,
        resolve_variables,
    )

    data = run_coro_as_sync(
        resolve_block_document_references(data, value_transformer=_into_env_var)
    )
    return run_coro_as_sync(resolve_variables(data))


def _into_env_var(placeholder: str, value: Any) -> str:
    """The placeholder's value in an environment variable named after it; an env_var() call in
    its place."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", placeholder).strip("_").upper()
    os.environ[name] = str(value)
    return f"{{{{ env_var('{name}') }}}}"
