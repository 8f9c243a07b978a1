"""Where the source is, seen from the warehouse: the two ways exigo-sync can be set up.

Either way, every batch pins its queue snapshot (with the `dbo` keys the deletion sweep compares
against and the lookups) in the warehouse's landing schemas before dbt runs, and dbt reads only
those (exigo_sync.warehouse.landing). The topology says how the copy gets there:

- **co-located**: the warehouse can read the sync database itself and copies the tables in one
  statement each: a DuckDB warehouse attaching the simulator file, or a SQL Server warehouse on
  the same server as the sync database (three-part names).
- **landed**: the warehouse is elsewhere (another SQL Server, a DuckDB file next to a real sync
  database): the flow streams the tables across, in chunks.

Both ends come from the dbt profile: the warehouse is the dbt target; the source is the output
named by EXIGO_SYNC_SOURCE_TARGET, else the simulator file a DuckDB warehouse target attaches as
`exigo` (older profiles), else the output named `simulator` for a DuckDB warehouse, else the
output named `source`. EXIGO_SYNC_TOPOLOGY picks the topology; `auto` (the default) takes
co-located when the profile makes it possible, landed otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from exigo_sync.profiles import SOURCE_ALIAS, ProfileError, Target, load_target, profile_outputs
from exigo_sync.source import SourceClient

DEFAULT_SOURCE_OUTPUT = "source"
# The demo's source: a simulator file, the default source of a DuckDB warehouse.
SIMULATOR_OUTPUT = "simulator"
TopologyName = Literal["colocated", "landed"]


@dataclass(frozen=True)
class Topology:
    warehouse: Target
    source: Target  # the profile output the source is reached through
    name: TopologyName
    # SQL Server: the sync database (co-located: read by three-part names from the warehouse).
    source_database: str | None = None
    # SQL Server source: seconds per statement (EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS); None =
    # the source output's own `query_timeout`.
    source_query_timeout: int | None = None

    @property
    def landed(self) -> bool:
        return self.name == "landed"

    def source_path(self) -> Path:
        """The simulator file of a DuckDB source."""
        if self.source is self.warehouse:
            return self.warehouse.source_path()
        return self.source.warehouse_path()  # a DuckDB source output's own `path`

    def source_client(self) -> SourceClient:
        if self.source.type == "duckdb":
            from exigo_sync.source.duckdb_client import DuckDbSourceClient

            return DuckDbSourceClient(self.source_path())
        from exigo_sync.source.sqlserver_client import SqlServerSourceClient

        return SqlServerSourceClient(
            self.source, database=self.source_database, query_timeout=self.source_query_timeout
        )

    def lock_name(self, override: str | None = None) -> str:
        """Name of the per-source lock (R2): one in-flight batch per *source*, however the
        profile spells it (server names are compared as `normalized_server` gives them)."""
        if override:
            ident, label = override, override
        elif self.source.type == "duckdb":
            path = self.source_path().resolve()
            ident, label = str(path), path.stem
        else:
            c = self.source.config
            server = normalized_server(str(c.get("server") or c.get("host") or ""), c.get("port"))
            database = str(self.source_database or c.get("database") or "").lower()
            ident = f"{server}/{database}"
            label = database
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
        # The digest keeps two sources with the same label apart.
        return f"exigo-sync-{slug}-{hashlib.sha1(ident.encode()).hexdigest()[:8]}"

    def scrub(self, text: str) -> str:
        return self.source.scrub(self.warehouse.scrub(text))

    def source_setting(self) -> str:
        """What names the simulator file: the source output's `path`, or the warehouse
        output's `attach` entry (older profiles)."""
        if self.source is self.warehouse:
            where = self.warehouse.where()
            return f"edit the `attach` entry with alias '{SOURCE_ALIAS}' in {where}"
        return self.source.path_hint()

    def require_source_file(self) -> None:
        """A DuckDB source (the simulator) is a file that must exist: DuckDB would create an
        empty one at a wrong path. The error names the file, what sets it, and how to make
        one."""
        if self.source.type != "duckdb":
            return
        path = self.source_path()
        if not path.is_file():
            raise ProfileError(
                f"the source file {path} does not exist: {self.source_setting()}, or create "
                f"a simulated sync database there (`exigo-sync simulate create {path}`)"
            )

    def source_hint(self) -> str:
        """Where the source is configured and how to test it, for a source error."""
        if self.source.type == "duckdb":
            return f"source: simulator file {self.source_path()}; {self.source_setting()}"
        return (
            f"source: {self.source.where()}; `exigo-sync check` tests its driver, login and rights"
        )

    def describe(self) -> str:
        where = (
            str(self.source_path())
            if self.source.type == "duckdb"
            else f"database {self.source_database} via output '{self.source.name}'"
        )
        return f"{self.name}: source {where}, warehouse target '{self.warehouse.name}'"


def resolve_topology(
    profiles_dir: Path,
    profile: str,
    *,
    target: str | None,
    source_target: str | None = None,
    topology: str = "auto",
    source_query_timeout: int | None = None,
) -> Topology:
    """The topology of a profile; `source_query_timeout` goes to the SQL Server source client."""
    found = _resolve(profiles_dir, profile, target=target, source_target=source_target,
                     topology=topology)  # fmt: skip
    if source_query_timeout is None:
        return found
    return dataclasses.replace(found, source_query_timeout=source_query_timeout)


def _resolve(
    profiles_dir: Path,
    profile: str,
    *,
    target: str | None,
    source_target: str | None,
    topology: str,
) -> Topology:
    if topology not in ("auto", "colocated", "landed"):
        raise ProfileError(
            f"EXIGO_SYNC_TOPOLOGY must be auto, colocated or landed, got {topology!r}"
        )
    warehouse = load_target(profiles_dir, profile, target)
    outputs = profile_outputs(profiles_dir, profile)
    attached = warehouse.type == "duckdb" and _attached_source(warehouse) is not None
    default = None
    if not attached and warehouse.type == "duckdb" and SIMULATOR_OUTPUT in outputs:
        default = SIMULATOR_OUTPUT
    elif not attached and DEFAULT_SOURCE_OUTPUT in outputs:
        default = DEFAULT_SOURCE_OUTPUT
    name = source_target or default
    if source_target and source_target not in outputs:
        raise ProfileError(
            f"EXIGO_SYNC_SOURCE_TARGET={source_target!r} is not an output of profile "
            f"'{profile}' (have: {', '.join(outputs)})"
        )
    source = load_target(profiles_dir, profile, name) if name and name != warehouse.name else None

    if source is None:
        if warehouse.type == "duckdb" and _attached_source(warehouse) is not None:
            if topology == "landed":
                raise ProfileError(
                    "EXIGO_SYNC_TOPOLOGY=landed needs a source output in the profile (set "
                    "EXIGO_SYNC_SOURCE_TARGET, or name the output `source`)"
                )
            return Topology(warehouse, warehouse, "colocated")
        raise ProfileError(
            f"no source for dbt target '{warehouse.name}': add an output named "
            f"'{DEFAULT_SOURCE_OUTPUT}' for the Exigo sync database to profile '{profile}' (or "
            "set EXIGO_SYNC_SOURCE_TARGET to the output that is)"
            + (
                ""
                if warehouse.type != "duckdb"
                else f", or an output named '{SIMULATOR_OUTPUT}' for a simulator file"
            )
        )

    if source.type not in ("duckdb", "sqlserver"):
        raise ProfileError(f"source output '{source.name}' has unsupported type '{source.type}'")
    colocated = _colocated(warehouse, source)
    if topology == "colocated" and colocated is None:
        raise ProfileError(
            f"EXIGO_SYNC_TOPOLOGY=colocated, but warehouse target '{warehouse.name}' cannot read "
            f"source output '{source.name}' (a SQL Server warehouse must be on the same server; "
            "a DuckDB warehouse must attach the source file as 'exigo')"
        )
    if topology != "landed" and colocated is not None:
        return colocated
    if source.type == "duckdb" and warehouse.type != "duckdb":
        raise ProfileError(
            "a DuckDB source (the simulator) can only be landed in a DuckDB warehouse"
        )
    database = source.config.get("database") if source.type == "sqlserver" else None
    return Topology(warehouse, source, "landed", database)


def _attached_source(warehouse: Target) -> Path | None:
    for entry in warehouse.config.get("attach") or []:
        if isinstance(entry, Mapping) and entry.get("alias") == SOURCE_ALIAS:
            return Path(str(entry["path"])).expanduser()
    return None


def _colocated(warehouse: Target, source: Target) -> Topology | None:
    """The co-located topology, if the warehouse can read the source where it is: a DuckDB
    warehouse attaches any DuckDB file on this machine; a SQL Server warehouse reads databases
    on its own server."""
    if warehouse.type == "duckdb" and source.type == "duckdb":
        return Topology(warehouse, source, "colocated")
    same_server = warehouse.type == source.type == "sqlserver" and (
        _server(warehouse) == _server(source)
    )
    if same_server:
        return Topology(warehouse, source, "colocated", source.config.get("database"))
    return None


def _server(target: Target) -> str:
    c = target.config
    return normalized_server(str(c.get("server") or c.get("host") or ""), c.get("port"))


_LOCALHOST = {"localhost", "127.0.0.1", "::1", "[::1]", "(local)", ".", "(localdb)"}
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def normalized_server(server: str, port: Any = None) -> str:
    """One spelling per SQL Server instance, for naming its lock and telling whether two
    outputs are one server: case folded, `tcp:` dropped, the port taken from `host,port` or
    `host:port` and dropped when it is 1433 (or 0: FreeTDS's "look it up"), the DNS domain
    dropped (`sql01.corp.example` is `sql01`; an IP address stays whole), every spelling of
    this machine (`localhost`, `127.0.0.1`, `(local)`, `.`) one name, an instance name
    (`host\\SQLEXPRESS`) kept. What it cannot know is that an IP address and a name are one
    machine: spell the server one way in every profile that shares a warehouse."""
    text = server.strip().lower().removeprefix("tcp:")
    for sep in (",", ":"):
        if sep in text and not text.startswith("["):
            text, _, written_port = text.partition(sep)
            port = port or written_port
    host, _, instance = text.partition("\\")
    if host in _LOCALHOST:
        host = "localhost"
    elif not _IPV4.match(host):
        host = host.split(".", 1)[0]
    port_text = str(port or "").strip()
    port_part = "" if port_text in ("", "0", "1433") else f":{port_text}"
    return host + (f"\\{instance}" if instance else "") + port_part
