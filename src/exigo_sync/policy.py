"""S2, the sensitive-column policy, as the Python side reads it.

The policy has one home: the dbt vars in `dbt_project/dbt_project.yml` (dbt applies the
treatments in staging). The flow reads the same vars here for what must happen before dbt runs:

- the landing (exigo_sync.warehouse.landing) never copies a column whose treatment is `drop`, so
  a secret never enters the warehouse, not even its landing schemas;
- a column the catalogue does not document and the policy does not name (schema drift: Exigo
  added it) whose name or type looks sensitive (`exigo_sensitive_name_patterns`,
  `exigo_sensitive_types`) stops the batch before anything is copied or merged, naming the one
  line to add to the policy (`check`);
- a policy that hashes a column needs the HMAC key (`hashed`; exigo_sync.settings).

Name patterns are Python regular expressions searched, case-insensitively, in the column's name
split into words (`exigo_sync.naming.snake_case`, then letters and digits apart, joined by
spaces): `CustomerSSN` is read as `customer ssn`, `CreditCardToken2` as `credit card token 2`,
so `\\b` marks a word's edge and `\\bssn\\b` matches `SSN` and `CustomerSSN` but not `BusinessName`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exigo_sync.catalog import LOOKUP_TABLES, REPLICATED_TABLES
from exigo_sync.naming import snake_case

TREATMENTS = ("drop", "mask", "hash", "keep")
PROJECT_FILE = "dbt_project/dbt_project.yml"  # where an operator edits the policy (messages)
POLICY_VAR = "exigo_sensitive_columns"
NAME_PATTERNS_VAR = "exigo_sensitive_name_patterns"
TYPES_VAR = "exigo_sensitive_types"
_PLAIN_YAML_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PolicyError(RuntimeError):
    """The policy refuses what the source delivers, or is itself malformed; the message says
    what to change, and never holds a value."""


def _documented(table: str) -> set[str]:
    if table in REPLICATED_TABLES:
        return {c.lower() for c in REPLICATED_TABLES[table].column_names}
    lookup = LOOKUP_TABLES.get(table)
    if lookup is not None:
        return {lookup.id_column.lower(), lookup.description_column.lower()}
    return set()


def _words(name: str) -> str:
    """`CustomerSSN` -> `customer ssn`; `CreditCardToken2` -> `credit card token 2`."""
    text = snake_case(name).replace("_", " ")
    return re.sub(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", " ", text)


def yaml_key(column: str) -> str:
    """The column as a YAML mapping key (quoted when it is not a plain name)."""
    if _PLAIN_YAML_KEY.match(column):
        return column
    return "'" + column.replace("'", "''") + "'"


@dataclass(frozen=True)
class SensitivePolicy:
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    name_patterns: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    @classmethod
    def from_vars(cls, project_vars: Mapping[str, Any]) -> SensitivePolicy:
        columns = project_vars.get(POLICY_VAR) or {}
        if not isinstance(columns, Mapping):
            raise PolicyError(f"{POLICY_VAR} must map queue tables to columns ({PROJECT_FILE})")
        checked: dict[str, dict[str, str]] = {}
        for table, per_table in columns.items():
            checked[str(table)] = {}
            for column, treatment in (per_table or {}).items():
                if treatment not in TREATMENTS:
                    raise PolicyError(
                        f"{POLICY_VAR}.{table}.{column} must be drop, mask, hash or keep, got "
                        f"{treatment!r} ({PROJECT_FILE})"
                    )
                keys = REPLICATED_TABLES[table].key if table in REPLICATED_TABLES else ()
                if treatment != "keep" and str(column) in keys:
                    raise PolicyError(
                        f"{POLICY_VAR}.{table}.{column} is a key column: it must be kept"
                    )
                checked[str(table)][str(column)] = str(treatment)
        patterns = tuple(str(p) for p in project_vars.get(NAME_PATTERNS_VAR) or ())
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PolicyError(
                    f"{NAME_PATTERNS_VAR}: {pattern!r} is not a regular expression ({exc})"
                ) from None
        types = tuple(str(t).lower() for t in project_vars.get(TYPES_VAR) or ())
        return cls(checked, patterns, types)

    @classmethod
    def load(cls, project_dir: Path, overrides: Mapping[str, Any] | None = None) -> SensitivePolicy:
        """The policy in `<project_dir>/dbt_project.yml`, with dbt `--vars` overrides (as dbt
        does, a var given there replaces the project's whole)."""
        path = Path(project_dir) / "dbt_project.yml"
        try:
            project_vars = dict(yaml.safe_load(path.read_text()).get("vars") or {})
        except (OSError, AttributeError, yaml.YAMLError) as exc:
            raise PolicyError(f"cannot read the sensitive-column policy in {path}: {exc}") from None
        project_vars.update(overrides or {})
        return cls.from_vars(project_vars)

    def treatment(self, table: str, column: str) -> str:
        """drop | mask | hash | keep (keep when the policy does not name the column)."""
        named = self._named(table, column)
        return named if named is not None else "keep"

    def _named(self, table: str, column: str) -> str | None:
        for name, treatment in (self.columns.get(table) or {}).items():
            if name.lower() == column.lower():
                return treatment
        return None

    def copied(self, table: str, columns: Iterable[str]) -> list[str]:
        """The columns of `table` a copy may carry: every one but those the policy drops."""
        return [c for c in columns if self.treatment(table, c) != "drop"]

    def hashed(self) -> list[str]:
        """`Table.Column` of every column whose treatment is `hash`."""
        return [
            f"{table}.{column}"
            for table, per_table in self.columns.items()
            for column, treatment in per_table.items()
            if treatment == "hash"
        ]

    def looks_sensitive(self, column: str, data_type: str) -> str | None:
        """Why `column` looks sensitive ("its name ... (matches 'ssn')"), or None."""
        words = _words(column)
        for pattern in self.name_patterns:
            found = re.search(pattern, words, re.IGNORECASE)
            if found:
                return f"its name looks sensitive (matches '{found.group(0)}')"
        base = data_type.strip().lower().split("(")[0].strip()
        if base in self.types:
            return f"its type looks sensitive ({base})"
        return None

    def check(self, table: str, columns: Iterable[tuple[str, str]], where: str) -> None:
        """S2 on schema drift: raise naming every column of `table` (read at `where`, e.g.
        `queue.Customers`) that the catalogue does not document, the policy does not name, and
        whose name or type looks sensitive. Nothing has been copied when this raises."""
        documented = _documented(table)
        problems = []
        for column, data_type in columns:
            if column.lower() in documented or self._named(table, column) is not None:
                continue
            why = self.looks_sensitive(column, data_type)
            if why:
                problems.append(
                    f"{table}.{column} (new in {where}) is not in the sensitive-column policy "
                    f"and {why}: add `{yaml_key(column)}: drop` (or mask / hash / keep) under "
                    f"`{table}:` in {POLICY_VAR} ({PROJECT_FILE})"
                )
        if problems:
            raise PolicyError("; ".join(problems) + "; nothing was copied or merged (S2)")
