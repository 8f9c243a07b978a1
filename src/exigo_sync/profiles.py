"""Read the dbt profile/target: the one place where the source and the warehouse are configured.

The target is rendered with dbt's own renderer (`env_var()` and friends) so Python and dbt agree,
and Prefect block placeholders (`{{ prefect.blocks.secret.x }}`) are resolved the way
prefect-dbt resolves them. Rendered values may hold secrets: `Target` never prints them (S1).

A relative DuckDB file in a profile (`path: data/warehouse.duckdb`, an `attach` entry's `path`)
names a file under the profile's folder (the folder holding profiles.yml), whatever directory a
command starts in: `load_target` makes it absolute, and dbt runs with that folder as its working
directory (exigo_sync.dbt_runner), where dbt-duckdb resolves the same relative path to the same
file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exigo_sync import paths

SOURCE_ALIAS = "exigo"
PROFILES_FILE = "profiles.yml"
# DuckDB `path` values that name no file in the profile's folder.
_NOT_A_FILE = (":memory:", "md:", "motherduck:", "s3://", "gs://", "http://", "https://")


class ProfileError(RuntimeError):
    """The dbt profile cannot give us a source or a warehouse."""


@dataclass(frozen=True)
class Target:
    name: str
    type: str
    # repr=False: the rendered config may hold passwords and must never reach a log (S1).
    config: Mapping[str, Any] = field(repr=False)
    # Where the output was read: the profiles.yml, and its `path` as written there (a template
    # such as "{{ env_var('EXIGO_SYNC_WAREHOUSE_PATH', 'data/warehouse.duckdb') }}"), so an
    # error about the file can name what sets it. None for targets built in code.
    profile_file: Path | None = None
    path_setting: str | None = None

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

    def where(self) -> str:
        """This output, as an operator finds it: "output 'duckdb' of /x/profiles.yml"."""
        return f"output '{self.name}'" + (f" of {self.profile_file}" if self.profile_file else "")

    def path_hint(self) -> str:
        """What sets this output's DuckDB file: the variable(s) its `path` reads, else the key."""
        names = _ENV_VAR_NAME.findall(self.path_setting or "")
        if names:
            return f"set {' or '.join(names)} (read by `path` in {self.where()})"
        return f"edit `path` in {self.where()}"

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


def profile_file(profiles_dir: Path) -> Path:
    return (Path(profiles_dir).expanduser() / PROFILES_FILE).resolve()


def _read_profile(profiles_dir: Path, profile: str) -> Mapping[str, Any]:
    path = profile_file(profiles_dir)
    if not path.exists():
        raise ProfileError(
            f"no profiles.yml in {path.parent} (set EXIGO_SYNC_PROFILES_DIR to the folder "
            f"holding yours, or copy the example profile {paths.example_profile()} there)"
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
    """The output `target` (else the profile's `target:`) of `profile`, rendered, its DuckDB
    files absolute (relative ones are under the profile's folder)."""
    prof = _read_profile(profiles_dir, profile)
    path = profile_file(profiles_dir)
    outputs = prof.get("outputs") or {}
    name = target or _render({"t": prof.get("target", "")})["t"]
    if name not in outputs:
        reads = _ENV_VAR_NAME.findall(str(prof.get("target", "")))
        origin = (
            "--target / EXIGO_SYNC_TARGET"
            if target
            else f"the `target:` of profile '{profile}'"
            + (f", which reads {' and '.join(reads)}" if reads else "")
        )
        raise ProfileError(
            f"target '{name}' (from {origin}) not found in profile '{profile}' of {path} (its "
            f"outputs: {', '.join(map(str, outputs))}): name one of them, or add the output to "
            "that file"
        )
    raw = dict(outputs[name])
    config = _render(raw)
    _refuse_unrendered(str(name), config)
    kind = str(config.get("type", ""))
    if kind == "duckdb":
        config = _absolute_duckdb_files(config, path.parent)
    raw_path = raw.get("path")
    return Target(
        name=str(name), type=kind, config=config, profile_file=path,
        path_setting=str(raw_path) if raw_path is not None else None,
    )  # fmt: skip


def _absolute_duckdb_files(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`path` and each `attach` entry's `path`, absolute: a relative one is under `folder`."""

    def absolute(value: Any) -> Any:
        text = str(value)
        if not text or text.startswith(_NOT_A_FILE):
            return value
        path = Path(text).expanduser()
        return str(path if path.is_absolute() else (folder / path).resolve())

    out = dict(config)
    if out.get("path") is not None:
        out["path"] = absolute(out["path"])
    if isinstance(out.get("attach"), list):
        out["attach"] = [
            {**entry, "path": absolute(entry["path"])}
            if isinstance(entry, Mapping) and entry.get("path") is not None
            else entry
            for entry in out["attach"]
        ]
    return out


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
