"""The settings (exigo_sync.settings): a value that would misconfigure a run is refused, naming
the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exigo_sync.settings import Settings


@pytest.mark.parametrize("bad", ["abc", "0", "-1"])
def test_a_bad_dbt_thread_count_is_refused_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile would render "abc" as 0 threads; the settings refuse it first."""
    monkeypatch.setenv("EXIGO_SYNC_DBT_THREADS", bad)
    with pytest.raises(ValueError, match="dbt_threads"):
        Settings()


def _landed_profile(tmp_path: Path, **source: Any) -> Path:
    """A DuckDB warehouse fed by a SQL Server source output (the landed topology)."""
    sqlserver = {"type": "sqlserver", "driver": "FreeTDS", "server": "sql.example.internal",
                 "port": 1433, "database": "ExigoSync", "schema": "dbo", "user": "reader",
                 "password": "x", "threads": 1}  # fmt: skip
    outputs = {
        "duck": {"type": "duckdb", "path": str(tmp_path / "wh.duckdb"), "threads": 1},
        "source": {**sqlserver, **source},
    }
    profile = {"exigo_sync": {"target": "duck", "outputs": outputs}}
    (tmp_path / "profiles.yml").write_text(yaml.safe_dump(profile))
    return tmp_path


def test_r4_the_source_query_timeout_setting_reaches_the_source_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS is what the SQL Server source client applies to
    every statement; unset, the source output's own `query_timeout` applies (the client leaves
    the connection's as dbt-sqlserver set it); 0 is kept (none)."""
    monkeypatch.setenv("EXIGO_SYNC_PROFILES_DIR", str(_landed_profile(tmp_path, query_timeout=9)))
    monkeypatch.delenv("EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS", raising=False)
    client = Settings().topology_for().source_client()
    assert client.query_timeout is None  # type: ignore[attr-defined]
    for value in ("30", "0"):
        monkeypatch.setenv("EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS", value)
        topology = Settings().topology_for()
        assert topology.landed
        assert topology.source_client().query_timeout == int(value)  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["-1", "soon"])
def test_r4_a_bad_source_query_timeout_is_refused_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXIGO_SYNC_SOURCE_QUERY_TIMEOUT_SECONDS", bad)
    with pytest.raises(ValueError, match="source_query_timeout_seconds"):
        Settings()
