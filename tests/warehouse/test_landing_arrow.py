"""The landed copy into DuckDB has two ways in: Arrow record batches the source's driver builds
(DuckDB; mssql-python) and rows a driver without Arrow fetch hands over (pyodbc), converted
column by column. Both must land the same tables, and a value the warehouse type cannot hold
stops the landing naming its column, whichever way it came."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from exigo_sync import paths
from exigo_sync.policy import SensitivePolicy
from exigo_sync.profiles import Target
from exigo_sync.simulator import SyncSimulator
from exigo_sync.source.duckdb_client import DuckDbSourceClient
from exigo_sync.warehouse.connection import connected
from exigo_sync.warehouse.landing import (
    QUEUE_SCHEMA,
    Column,
    LandingError,
    LandingTable,
    _DuckDbWriter,
    land_batch,
    tables_for_batch,
)


class RowsOnlySource(DuckDbSourceClient):
    """A double of a driver without Arrow fetch (pyodbc): the simulator, read as rows."""

    reads_arrow = False


def _land(source: DuckDbSourceClient, warehouse: Path) -> dict[str, int]:
    target = Target("duckdb", "duckdb", {"path": str(warehouse)})
    landing = land_batch(
        source, "duckdb", target, 1, tables_for_batch(["payments"]),
        logger=logging.getLogger("test"), policy=SensitivePolicy.load(paths.dbt_project_dir()),
    )  # fmt: skip
    return landing.rows


def _contents(warehouse: Path) -> dict[str, tuple[list[tuple], list[tuple]]]:
    """Every landed table: its columns with types, and its rows in a stable order."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema LIKE 'exigo_landing%' AND table_name <> 'landed_tables' "
            "ORDER BY 1, 2"
        ).fetchall()
        out = {}
        for schema, name in tables:
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, name],
            ).fetchall()
            rows = con.execute(f'SELECT * FROM {schema}."{name}" ORDER BY ALL').fetchall()
            out[f"{schema}.{name}"] = (columns, rows)
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def refreshed_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arrow") / "exigo_source.duckdb"
    sim = SyncSimulator.create(path, seed=7, customers=300, clock_start=datetime(2026, 1, 5))
    sim.refresh(datetime(2000, 1, 1))  # every row in the queue tables
    return path


def test_arrow_batches_and_rows_land_the_same_tables(refreshed_source: Path, tmp_path: Path):
    assert DuckDbSourceClient(refreshed_source).reads_arrow
    by_arrow = _land(DuckDbSourceClient(refreshed_source), tmp_path / "arrow.duckdb")
    by_rows = _land(RowsOnlySource(refreshed_source), tmp_path / "rows.duckdb")
    assert by_arrow == by_rows
    assert by_arrow["queue.Customers"] == 300 and by_arrow["queue.Orders"] > 300
    arrow_tables = _contents(tmp_path / "arrow.duckdb")
    assert arrow_tables == _contents(tmp_path / "rows.duckdb")
    # Types are the source's own, whichever way the rows came (not Arrow's guesses).
    columns = dict(arrow_tables[f"{QUEUE_SCHEMA}.Orders"][0])
    assert columns["OrderID"] == "INTEGER" and columns["Total"].startswith("DECIMAL")


def test_a_table_committed_part_by_part_lands_whole(
    refreshed_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """DuckDB commits a landed table every COMMIT_EVERY_BYTES (here: after every chunk of 50
    rows), and the table still lands whole."""
    from exigo_sync.warehouse import landing

    whole = _land(DuckDbSourceClient(refreshed_source), tmp_path / "whole.duckdb")
    monkeypatch.setattr(landing, "COMMIT_EVERY_BYTES", 1)
    in_parts = _land(_SmallBatches(refreshed_source), tmp_path / "parts.duckdb")
    assert in_parts == whole
    assert _contents(tmp_path / "parts.duckdb") == _contents(tmp_path / "whole.duckdb")


class _SmallBatches(DuckDbSourceClient):
    """The simulator read in Arrow batches of 50 rows."""

    def record_batches(self, sql: str, params: Sequence[Any] = (), *, batch_size: int = 50) -> Any:
        return super().record_batches(sql, params, batch_size=50)


def test_arrow_batches_need_no_more_than_one_batch_in_memory(refreshed_source: Path):
    with DuckDbSourceClient(refreshed_source).record_batches(
        'SELECT * FROM queue."Orders"', batch_size=100
    ) as batches:
        sizes = [batch.num_rows for batch in batches]
    assert len(sizes) > 1 and max(sizes) <= 100


@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "appending"])
@pytest.mark.parametrize("as_arrow", [True, False], ids=["arrow", "rows"])
def test_value_the_warehouse_type_cannot_hold_names_its_column(
    tmp_path: Path, as_arrow: bool, in_transaction: bool
):
    target = Target("duckdb", "duckdb", {"path": str(tmp_path / "w.duckdb")})
    table = LandingTable("queue", "Orders")
    columns = [Column("OrderID", "INTEGER"), Column("Total", "DECIMAL(5,2)")]
    rows = [(1, Decimal("12.50")), (2, Decimal("123456.78"))]
    chunk: object = rows
    if as_arrow:
        chunk = pa.RecordBatch.from_pydict(
            {"OrderID": [1, 2], "Total": pa.array([r[1] for r in rows], pa.decimal128(10, 2))}
        )
    with connected(target) as con:
        writer = _DuckDbWriter(con)
        writer.ensure_schemas()
        writer.create_incoming(table, columns)
        # Inside `appending` (as land_batch calls it) the failed insert aborts the transaction:
        # the diagnosis must still blame Total, not the first column it tries.
        appending = writer.appending() if in_transaction else contextlib.nullcontext()
        with (
            pytest.raises(LandingError, match=r"queue\.Orders\.Total .*DECIMAL\(5,2\)"),
            appending,
        ):
            writer.append(table, columns, chunk)
