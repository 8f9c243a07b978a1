"""The fixture catalogue behind `CatalogueConnection`: what a SQL Server would hold for one
exigo-sync warehouse and its Exigo sync database, typed as SQL Server reports types.

- The source database (`exigo`): `queue.*` and `dbo.*` typed from the documented source types
  (`exigo_sync.catalog`), lookups as `int` + `nvarchar(100)`.
- The warehouse database: the relations dbt creates while it runs (`CREATE OR ALTER VIEW`,
  `SELECT * INTO`, `sp_rename`, `ALTER TABLE`, `CREATE INDEX`, `DROP`), so a second run sees what
  the first one built.

The columns of a model come from a DuckDB build of the same project (names, in order); their
SQL Server types are derived, per column, the way `SELECT * INTO` would type them:
1. `CAST(... AS t) AS col` in the model SQL -> t; `x.[Col] AS col` -> the type of Col upstream;
2. a same-named column (or a source column whose snake_case name matches) in a relation the model
   reads -> its type, S2-masked / hashed source columns -> nvarchar(max);
3. columns computed by the project's macros (`COMPUTED_TYPES`);
4. otherwise the DuckDB type mapped to SQL Server (`DUCKDB_TO_SQLSERVER`).
That is an approximation of SQL Server's type derivation, good enough to check what depends on
types (index key columns, column widening, the B3 probe), not a substitute for a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from exigo_sync.catalog import LOOKUP_TABLES, REPLICATED_TABLES
from exigo_sync.naming import column_name

# Columns the project's macros compute without a CAST, as SQL Server types them.
COMPUTED_TYPES: dict[str, str] = {
    "version_time": "datetime",  # q.ModifiedDate / max(parent ModifiedDate)
    "row_hash": "varchar(64)",  # lower(convert(varchar(64), hashbytes(...), 2))
    "source_row_count": "int",  # count(*) over (...)
    "is_tie_broken": "bit",
    "valid_from": "datetime",
    "valid_to": "datetime",
    "deleted_at": "datetime",
    "is_current": "bit",
    "is_deleted": "bit",
    "history_version_id": "nvarchar(max)",  # concat() of nvarchar(max) parts
    "rejected_at": "datetime2(6)",  # CAST(SYSDATETIME() AS DATETIME2(6))
}

DUCKDB_TO_SQLSERVER: dict[str, str] = {
    "VARCHAR": "nvarchar(max)",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "BOOLEAN": "bit",
    "TIMESTAMP": "datetime",
    "TIMESTAMP WITH TIME ZONE": "datetimeoffset",
    "DATE": "date",
    "DOUBLE": "float",
    "UUID": "uniqueidentifier",
    "BLOB": "varbinary(max)",
    "HUGEINT": "decimal(38,0)",
}

LOB_TYPES = re.compile(r"^(n?varchar|varbinary)\(max\)$|^(n?text|image|xml)$")


def normalize_type(sql_type: str) -> str:
    t = sql_type.lower().replace(" ", "")
    t = re.sub(r"^integer$", "int", t)
    return re.sub(r"^numeric", "decimal", t)


@dataclass
class Column:
    name: str
    type: str  # SQL Server type as written in DDL: nvarchar(50), nvarchar(max), money, ...

    def sys_columns_row(self) -> tuple[str, str, int, int, int]:
        """(column_name, data_type, character_maximum_length, numeric_precision, numeric_scale),
        as dbt-sqlserver's get_columns_in_relation query reports it (n-type lengths in
        characters, -1 for max)."""
        base, _, args = normalize_type(self.type).partition("(")
        args = args.rstrip(")")
        if base in ("nvarchar", "varchar", "nchar", "char", "varbinary", "binary"):
            return (self.name, base, -1 if args == "max" else int(args or 1), 0, 0)
        if base == "decimal":
            precision, _, scale = args.partition(",")
            return (self.name, base, 17, int(precision or 18), int(scale or 0))
        fixed = {
            "int": (4, 10, 0),
            "bigint": (8, 19, 0),
            "smallint": (2, 5, 0),
            "tinyint": (1, 3, 0),
            "bit": (1, 1, 0),
            "money": (8, 19, 4),
            "smallmoney": (4, 10, 4),
            "datetime": (8, 23, 3),
            "datetime2": (8, 27, int(args or 7)),
            "date": (3, 10, 0),
            "float": (8, 53, 0),
            "uniqueidentifier": (16, 0, 0),
            "datetimeoffset": (10, 34, 7),
        }
        length, precision, scale = fixed.get(base, (0, 0, 0))
        return (self.name, base, length, precision, scale)

    def key_bytes(self) -> int | None:
        """Bytes as an index key column; None for a type that cannot be a key (LOB)."""
        t = normalize_type(self.type)
        if LOB_TYPES.match(t):
            return None
        name, base, length, *_ = self.sys_columns_row()
        del name
        return length * 2 if base in ("nvarchar", "nchar") else length


@dataclass
class Index:
    name: str
    columns: list[str]
    unique: bool
    kind: str  # clustered | nonclustered | clustered columnstore


@dataclass
class Relation:
    database: str
    schema: str
    name: str
    kind: str  # table | view
    columns: list[Column]
    indexes: list[Index] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name.lower() == name.lower():
                return c
        return None


def _key(database: str, schema: str, name: str) -> tuple[str, str, str]:
    return (database.lower(), schema.lower(), name.lower())


class Catalogue:
    """Databases, schemas and relations, changed by the DDL the double executes."""

    def __init__(self, model_columns: dict[str, list[tuple[str, str]]]):
        # model name -> [(column, DuckDB type)] from the DuckDB build
        self.model_columns = model_columns
        self.schemas: dict[str, set[str]] = {}
        self.relations: dict[tuple[str, str, str], Relation] = {}
        self.ever: set[tuple[str, str, str]] = set()
        # (table, column) -> S2 treatment of source columns
        self.policy: dict[tuple[str, str], str] = {}
        # the batch whose copy exigo_landing.landed_tables records (every table landed by it)
        self.landed_batch: int | None = None

    # --- content ------------------------------------------------------------------------------

    def add_schema(self, database: str, schema: str) -> None:
        self.schemas.setdefault(database.lower(), set()).add(schema.lower())

    def add(self, rel: Relation) -> None:
        self.add_schema(rel.database, rel.schema)
        key = _key(rel.database, rel.schema, rel.name)
        self.relations[key] = rel
        self.ever.add(key)

    def get(self, database: str, schema: str, name: str) -> Relation | None:
        return self.relations.get(_key(database, schema, name))

    def drop(self, database: str, schema: str, name: str) -> None:
        self.relations.pop(_key(database, schema, name), None)

    def rename(self, database: str, schema: str, old: str, new: str) -> None:
        rel = self.relations.pop(_key(database, schema, old))
        rel.name = new
        self.add(rel)

    def in_schema(self, database: str, schema: str) -> list[Relation]:
        wanted = (database.lower(), schema.lower())
        return [r for (d, s, _), r in self.relations.items() if (d, s) == wanted]

    # --- types of a new view / table ----------------------------------------------------------

    def view_columns(self, view_name: str, body: exp.Expression, database: str) -> list[Column]:
        """Columns of a view over model SQL, typed as SQL Server would type them."""
        model = base_model_name(view_name)
        names = self.model_columns.get(model)
        if names is None:
            return []  # a data-test view: its columns are never asked for
        upstream = self._upstream(body, database)
        return [Column(n, self._column_type(model, n, ddb, body, upstream)) for n, ddb in names]

    def _upstream(self, body: exp.Expression, database: str) -> list[Relation]:
        ctes = {c.alias_or_name.lower() for c in body.find_all(exp.CTE)}
        out = []
        for t in body.find_all(exp.Table):
            if not t.db and t.name.lower() in ctes:
                continue
            rel = self.get(t.catalog or database, t.db or "dbo", t.name)
            if rel is not None and rel not in out:
                out.append(rel)
        return out

    def _upstream_type(self, name: str, upstream: Iterable[Relation]) -> str | None:
        for rel in upstream:
            # as SQL Server resolves it (case-insensitive), or a source column read under its
            # snake_case name (staging)
            col = rel.column(name) or next(
                (c for c in rel.columns if column_name(c.name) == name), None
            )
            if col is None:
                continue
            if self.policy.get((rel.name, col.name)) in ("mask", "hash"):
                return "nvarchar(max)"  # masked / hashed text (exigo_text is nvarchar(max))
            return col.type
        return None

    def _column_type(
        self, model: str, name: str, duckdb_type: str, body: exp.Expression, upstream
    ) -> str:
        # Aliases are compared case-sensitively: the models alias in snake_case, while the
        # PascalCase aliases inside FOR JSON are JSON keys, not columns.
        aliases = [a for a in body.find_all(exp.Alias) if a.alias == name]
        for alias in aliases:
            if isinstance(alias.this, exp.Cast):
                return normalize_type(alias.this.args["to"].sql("tsql"))
        for alias in aliases:
            if isinstance(alias.this, exp.Column):
                found = self._upstream_type(alias.this.name, upstream)
                if found:
                    return found
        found = self._upstream_type(name, upstream)
        if found:
            return found
        if name in COMPUTED_TYPES:
            return COMPUTED_TYPES[name]
        base = duckdb_type.upper()
        if base.startswith("DECIMAL"):
            return normalize_type(base)
        return DUCKDB_TO_SQLSERVER[base]


SUFFIXES = ("__dbt_tmp_vw", "__dbt_temp", "__dbt_tmp", "__dbt_backup")


def base_model_name(identifier: str) -> str:
    name = identifier.lower()
    changed = True
    while changed:
        changed = False
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def source_relations(database: str, overrides: dict[tuple[str, str], dict[str, str]]) -> list:
    """The batch's pinned copy of the sync database, where dbt reads it (R3): queue.* in
    `exigo_landing`, dbo.* (each replicated table with its `<Table>__reopen` rows, and the
    lookups) in `exigo_landing_dbo`, and the manifest `exigo_landing.landed_tables`, all in the
    warehouse `database`; typed as documented, with per-table column overrides {(schema,
    table): {column: type}} ("queue" / "dbo"; a type of None drops the column)."""
    landing = {"queue": "exigo_landing", "dbo": "exigo_landing_dbo"}
    out = []
    for schema in ("queue", "dbo"):
        for t in REPLICATED_TABLES.values():
            types = {c.name: c.sql_type for c in t.columns}
            types.update(overrides.get((schema, t.name), {}))
            cols = [Column(n, ty) for n, ty in types.items() if ty is not None]
            out.append(Relation(database, landing[schema], t.name, "table", cols))
            if schema == "dbo":
                reopen = [Column(c.name, c.type) for c in cols]
                name = f"{t.name}__reopen"
                out.append(Relation(database, landing[schema], name, "table", reopen))
    for lk in LOOKUP_TABLES.values():
        cols = [Column(c.name, c.sql_type) for c in lk.columns]
        out.append(Relation(database, landing["dbo"], lk.name, "table", cols))
    manifest = [Column("batch_id", "bigint"), Column("table_name", "nvarchar(256)")]
    out.append(Relation(database, "exigo_landing", "landed_tables", "table", manifest))
    return out


def parse_relation_name(text: str) -> tuple[str | None, str | None, str]:
    """'"db"."schema"."name"', '[schema].[name]', 'schema.name' -> (db, schema, name)."""
    parts = [p.strip('"[]') for p in re.findall(r'"[^"]*"|\[[^\]]*\]|[^.]+', text.strip())]
    parts = [None] * (3 - len(parts)) + parts
    return parts[0], parts[1], parts[2]


def parse_view(sql: str) -> exp.Create | None:
    try:
        tree = sqlglot.parse_one(sql, read="tsql")
    except sqlglot.errors.ParseError:
        return None
    return tree if isinstance(tree, exp.Create) else None
