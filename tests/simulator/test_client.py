"""DuckDbSourceClient: the SourceClient protocol over a simulator file, with B5's error split."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from exigo_sync.simulator import SyncSimulator
from exigo_sync.source import SourceClient, SourceError, TransientSourceError
from exigo_sync.source.duckdb_client import DuckDbSourceClient
from tests.simulator.helpers import BUSY, CLOCK_START, SEED


def test_client_refresh_is_the_vendor_procedure(sim: SyncSimulator) -> None:
    client: SourceClient = DuckDbSourceClient(sim.path)
    assert client.source_clock() == CLOCK_START
    first = client.refresh(None)
    assert first.row_counts == sim.row_counts("queue")
    sim.advance(timedelta(hours=1), BUSY)
    start = CLOCK_START - timedelta(minutes=10)
    second = client.refresh(start)
    assert second.requested_start == start
    assert second.refresh_started_at == CLOCK_START + timedelta(hours=1)
    assert second.row_counts["Customers"] == len(sim.changed_since("Customers", start))
    client.close()


def test_client_holds_no_connection_between_calls(sim: SyncSimulator) -> None:
    client = DuckDbSourceClient(sim.path)
    client.refresh(None)
    con = duckdb.connect(str(sim.path), read_only=True)  # what dbt does right after
    con.close()


@pytest.mark.parametrize("stem", ["sim", "queue", "dbo"])
def test_a_file_named_like_one_of_its_schemas_works(stem: str, tmp_path: Path) -> None:
    # Opened directly, DuckDB names a file's catalog after it: `sim.Clock` in sim.duckdb was
    # ambiguous, and `simulate create` stopped with a Binder Error.
    path = tmp_path / f"{stem}.duckdb"
    sim = SyncSimulator.create(path, seed=SEED, customers=60, clock_start=CLOCK_START)
    sim.advance(timedelta(hours=2), BUSY)
    batch = DuckDbSourceClient(path).refresh(CLOCK_START - timedelta(days=1))
    assert batch.row_counts == sim.row_counts("queue")
    assert batch.row_counts["Orders"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}.duckdb"]


def test_client_missing_file_is_a_source_error_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nope.duckdb"
    with pytest.raises(SourceError, match="not found") as err:
        DuckDbSourceClient(path).refresh(None)
    assert not isinstance(err.value, TransientSourceError)
    assert not path.exists()


def test_client_file_without_queue_schema_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(SourceError, match=r"queue\.RefreshState is missing") as err:
        DuckDbSourceClient(path).refresh(datetime(2026, 1, 1))
    assert not isinstance(err.value, TransientSourceError)


def test_client_locked_file_is_a_transient_error(sim: SyncSimulator) -> None:
    # Another process holds the file (as a running dbt or a second writer would).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(30)",
            str(sim.path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(TransientSourceError, match="busy"):
            DuckDbSourceClient(sim.path).refresh(None)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert DuckDbSourceClient(sim.path).refresh(None).row_counts  # fine once released
