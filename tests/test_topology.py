"""Where the source is, seen from the warehouse (exigo_sync.topology): which output is the
source, co-located or landed, and the one lock per source however its server is spelled (R2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exigo_sync.profiles import ProfileError, Target
from exigo_sync.settings import REPO_ROOT
from exigo_sync.topology import Topology, normalized_server, resolve_topology


def _sqlserver(name: str, server: str, port: object = None, database: str = "ExigoSync") -> Target:
    config = {"type": "sqlserver", "server": server, "database": database}
    if port is not None:
        config["port"] = port
    return Target(name, "sqlserver", config)


@pytest.mark.parametrize(
    ("server", "port"),
    [
        ("sql01", None),
        ("SQL01", 1433),
        ("sql01.corp.example", None),
        ("tcp:sql01,1433", None),
        ("sql01.corp.example:1433", 0),
    ],
)
def test_r2_one_lock_however_the_server_is_spelled(server: str, port: object) -> None:
    warehouse = _sqlserver("warehouse", "wh01", database="Warehouse")
    reference = Topology(warehouse, _sqlserver("source", "sql01"), "landed", "ExigoSync")
    spelled = Topology(warehouse, _sqlserver("source", server, port), "landed", "exigosync")
    assert spelled.lock_name() == reference.lock_name()


def test_r2_other_servers_databases_and_ports_are_other_locks() -> None:
    warehouse = _sqlserver("warehouse", "wh01", database="Warehouse")
    names = {
        Topology(warehouse, _sqlserver("source", s, p), "landed", d).lock_name()
        for s, p, d in [
            ("sql01", None, "ExigoSync"),
            ("sql02", None, "ExigoSync"),
            ("sql01", 1444, "ExigoSync"),
            ("sql01", None, "OtherSync"),
        ]
    }
    assert len(names) == 4


def test_normalized_server_spellings_of_this_machine_and_instances() -> None:
    assert {normalized_server(s) for s in ("localhost", "127.0.0.1", "(local)", ".")} == {
        "localhost"
    }
    assert normalized_server("10.0.0.5,1433") == "10.0.0.5"  # an address stays whole
    assert normalized_server("sql01.corp\\SQLEXPRESS") == "sql01\\sqlexpress"


def test_the_example_profile_demo_is_colocated_with_its_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DuckDB warehouse's source is the output `simulator` (the demo); the warehouse copies
    the batch's snapshot itself (co-located); dbt never attaches the simulator."""
    (tmp_path / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_PATH", str(tmp_path / "sim.duckdb"))
    monkeypatch.setenv("EXIGO_SYNC_WAREHOUSE_PATH", str(tmp_path / "wh.duckdb"))
    topology = resolve_topology(tmp_path, "exigo_sync", target="duckdb")
    assert (topology.name, topology.source.name) == ("colocated", "simulator")
    assert topology.source_path() == tmp_path / "sim.duckdb"
    assert "attach" not in topology.warehouse.config


def test_a_missing_source_file_names_the_file_the_variable_and_the_profile_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "profiles.yml").write_text((REPO_ROOT / "profiles.example.yml").read_text())
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_PATH", "nowhere.duckdb")
    monkeypatch.setenv("EXIGO_SYNC_WAREHOUSE_PATH", str(tmp_path / "wh.duckdb"))
    topology = resolve_topology(tmp_path, "exigo_sync", target="duckdb")
    with pytest.raises(ProfileError) as missing:
        topology.require_source_file()
    message = str(missing.value)
    assert f"the source file {tmp_path / 'nowhere.duckdb'} does not exist" in message
    assert "set EXIGO_SYNC_SOURCE_PATH" in message
    assert f"output 'simulator' of {tmp_path / 'profiles.yml'}" in message
    assert f"exigo-sync simulate create {tmp_path / 'nowhere.duckdb'}" in message
