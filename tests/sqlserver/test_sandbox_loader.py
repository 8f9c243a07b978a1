"""deploy/sqlserver/load_simulator.py against a recording DB-API double, short of a live server.

`RecordingDbApiDouble` is a test double of a pyodbc connection, not a database: the strict
recording connection of tests/sqlserver/doubles.py (it refuses a parameter count that differs
from the markers, a statement while another cursor's results are unread, fast_executemany with
FreeTDS) keeping just enough state (rows per table by key, the sandbox.LoadState rows,
commit/rollback) to answer the loader's few queries.

Proven here: with Microsoft's driver rows go in batches of at most --batch-size with
fast_executemany set and explicit parameter types matching the catalogue; with FreeTDS as multi-row
INSERTs within 2,100 parameters, never with parameter arrays, to the same result; values are
converted (datetime truncated to ms and shifted by whole seconds so the newest change lands the
margin before the server's now, BirthDate and the zero date left alone, uniqueidentifier as text,
money as Decimal, varbinary as bytes); a load is one transaction (committed once, rolled back on
error); the progress output; a later load reads every result to its end before the next statement
and applies exactly the simulator's changes (upserts and deleted keys) so the double ends up
holding what a fresh full load would; the shift never decreases for the same file; the loader's
SQL parses as T-SQL; no password in any output, error or repr.

Only a live server proves: that pyodbc + the ODBC driver accept these parameter types, TRUNCATE
inside the transaction, the actual speed, and that the server stores what was sent
(tests/sqlserver/test_sandbox_live.py).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from deploy.sqlserver import load_simulator as loader
from exigo_sync.catalog import QUEUE_TABLES, REPLICATED_TABLES
from exigo_sync.simulator.core import SyncSimulator
from exigo_sync.simulator.rates import ActivityRates
from tests.sqlserver.doubles import FREETDS, MSODBC18, Call, Log, Outcome, RecordingConnection

pyodbc = pytest.importorskip("pyodbc")

PASSWORD = "Sandbox-Secret-42!"
ENV = {
    "EXIGO_SYNC_TEST_MSSQL_SERVER": "127.0.0.1",
    "EXIGO_SYNC_TEST_MSSQL_PORT": "14330",
    "EXIGO_SYNC_TEST_MSSQL_USER": "sa",
    "EXIGO_SYNC_TEST_MSSQL_PASSWORD": PASSWORD,
    "EXIGO_SYNC_TEST_MSSQL_DRIVER": "ODBC Driver 18 for SQL Server",
}
SERVER_NOW = datetime(2026, 11, 27, 8, 0, 0, 0)
INSERT = re.compile(r"INSERT INTO \[dbo\]\.\[(\w+)\] \(([^)]*)\) VALUES")
DELETE = re.compile(r"DELETE FROM \[dbo\]\.\[(\w+)\] WHERE")
TRUNCATE = re.compile(r"TRUNCATE TABLE \[dbo\]\.\[(\w+)\]")
KEYS = re.compile(r"SELECT (.*) FROM \[dbo\]\.\[(\w+)\]")


# --- the double ----------------------------------------------------------------------------------


class RecordingDbApiDouble(RecordingConnection):
    """A recording double of a pyodbc connection (see the module docstring), as strict as the
    driver (tests/sqlserver/doubles.py: parameter markers, no MARS, no fast_executemany with
    FreeTDS); `driver` is the ODBC driver it behaves like."""

    def __init__(
        self, server_now: datetime = SERVER_NOW, fail_on: str | None = None,
        driver: str = MSODBC18,
    ) -> None:  # fmt: skip
        super().__init__(Log(), self.answer, 0, driver)
        self._autocommit = False  # the loader connects with autocommit off
        self.server_now = server_now
        self.fail_on = fail_on
        self.tables: dict[str, dict[tuple, tuple]] = {t: {} for t in REPLICATED_TABLES}
        self.columns: dict[str, list[str]] = {}
        self.load_state: list[tuple] = []
        self.commits = self.rollbacks = 0
        self._snapshot = self._copy()

    def reconnect(self) -> RecordingDbApiDouble:
        """A new connection to the same server state (each loader run opens its own)."""
        self.closed, self._autocommit = False, False
        self._cursors.clear()
        return self

    @property
    def calls(self) -> list[Call]:
        return self.log.calls

    def _copy(self):
        return ({t: dict(r) for t, r in self.tables.items()}, list(self.load_state))

    def commit(self) -> None:
        super().commit()
        self.commits += 1
        self._snapshot = self._copy()

    def rollback(self) -> None:
        super().rollback()
        self.rollbacks += 1
        tables, state = self._snapshot
        self.tables, self.load_state = {t: dict(r) for t, r in tables.items()}, list(state)

    def answer(self, sql: str, params: tuple) -> Outcome:
        if self.fail_on and self.fail_on in sql:
            return [pyodbc.Error("42000", f"[Microsoft][ODBC Driver 18] failed: PWD={PASSWORD};")]
        if sql == loader.SERVER_NOW:
            return [[(self.server_now,)]]
        if sql == loader.LAST_LOAD:
            return [[tuple(r[1:5]) for r in self.load_state[-1:]]]
        if sql == loader.RECORD_LOAD:
            # (mode, file, seed, simulator clock, shift): what LAST_LOAD reads back
            self.load_state.append((params[0], params[1], params[2], params[3], params[5]))
            return [1]
        if m := TRUNCATE.fullmatch(sql):
            self.tables[m[1]].clear()
            return []
        if m := INSERT.match(sql):
            names = [c.strip("[]") for c in m[2].split(", ")]
            self.columns[m[1]] = names
            for i in range(0, len(params), len(names)):  # one row, or a multi-row VALUES
                row = tuple(params[i : i + len(names)])
                key = tuple(row[names.index(k)] for k in REPLICATED_TABLES[m[1]].key)
                assert key not in self.tables[m[1]], f"duplicate key {key} in {m[1]}"
                self.tables[m[1]][key] = row
            return [len(params) // len(names)]
        if m := DELETE.match(sql):
            return [1 if self.tables[m[1]].pop(tuple(params), None) else 0]
        if m := KEYS.fullmatch(sql):
            return [list(self.tables[m[2]])]
        raise AssertionError(f"the double does not know this statement: {sql}")

    def executemanys(self, table: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.rows is not None and (table is None or f"[dbo].[{table}]" in c.sql)
        ]

    def inserts(self, table: str) -> list[Call]:
        """Every INSERT into dbo.`table`, executemany or multi-row VALUES."""
        return [c for c in self.calls if c.sql.startswith(f"INSERT INTO [dbo].[{table}]")]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("loader") / "source.duckdb"
    SyncSimulator.create(path, seed=5, customers=60, clock_start=datetime(2026, 1, 5))
    SyncSimulator(path).advance(timedelta(hours=2), ActivityRates().scaled(10.0))
    return path


@pytest.fixture
def sim_copy(sim_file, tmp_path) -> Path:
    path = tmp_path / "source.duckdb"
    path.write_bytes(sim_file.read_bytes())
    return path


def run(path: Path, con: RecordingDbApiDouble, *args: str, env=ENV) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = loader.main(
        [str(path), *args],
        env=env,
        connect=lambda s: con.reconnect(),
        out=out,
        err=err,
        pyodbc=pyodbc,
    )
    return code, out.getvalue(), err.getvalue()


def sim_counts(path: Path) -> dict[str, int]:
    sim = loader.SimulatorFile.open(path)
    return {t: sim.rows(REPLICATED_TABLES[t], None, 10_000)[0] for t in QUEUE_TABLES}


def sim_rows(path: Path) -> Iterator[tuple[str, tuple]]:
    sim = loader.SimulatorFile.open(path)
    for name in QUEUE_TABLES:
        _, batches = sim.rows(REPLICATED_TABLES[name], None, 500)
        for batch in batches:
            for row in batch:
                yield name, row


# --- tests ---------------------------------------------------------------------------------------


def test_full_load_batches_with_fast_executemany_and_typed_parameters(sim_copy):
    con = RecordingDbApiDouble()
    code, _, err = run(sim_copy, con, "--batch-size", "50")
    assert code == 0, err
    counts = sim_counts(sim_copy)
    assert counts["OrderDetails"] > 100  # several batches for the bigger tables
    for name, table in REPLICATED_TABLES.items():
        calls = con.executemanys(name)
        sent = [len(c.rows) for c in calls]
        assert sum(sent) == counts[name], name
        assert all(0 < n <= 50 for n in sent), name
        assert len(calls) == -(-counts[name] // 50), name  # ceil: full batches, one remainder
        for call in calls:
            assert call.fast_executemany, "fast_executemany must be set before executemany"
            assert call.sql == loader.insert_sql(name, table.column_names)
            expected = [loader.input_size(c, pyodbc) for c in table.columns]
            assert call.input_sizes == expected
            assert all(len(r) == len(table.columns) for r in call.rows)
        assert len(con.tables[name]) == counts[name]
    # one transaction: emptied first, committed once, recorded in sandbox.LoadState
    truncates = [c.sql for c in con.calls if c.sql.startswith("TRUNCATE")]
    assert truncates == [loader.truncate_sql(t) for t in QUEUE_TABLES]
    assert (con.commits, con.rollbacks) == (1, 0)
    assert con.closed
    assert con.load_state[-1][0] == "full"


def test_input_sizes_follow_the_catalogue_types():
    by_type = {
        c.sql_type: loader.input_size(c, pyodbc)
        for t in REPLICATED_TABLES.values()
        for c in t.columns
    }
    assert by_type["int"] == (pyodbc.SQL_INTEGER, 0, 0)
    assert by_type["bit"] == (pyodbc.SQL_BIT, 0, 0)
    assert by_type["datetime"] == (pyodbc.SQL_TYPE_TIMESTAMP, 23, 3)
    assert by_type["money"] == (pyodbc.SQL_DECIMAL, 19, 4)
    assert by_type["uniqueidentifier"] == (pyodbc.SQL_WVARCHAR, 36, 0)
    assert by_type["nvarchar(50)"] == (pyodbc.SQL_WVARCHAR, 50, 0)
    assert by_type["nvarchar(max)"] == (pyodbc.SQL_WVARCHAR, 0, 0)
    assert by_type["varbinary(50)"] == (pyodbc.SQL_VARBINARY, 50, 0)


def test_values_are_converted_and_the_clock_is_shifted(sim_copy):
    con = RecordingDbApiDouble()
    code, _, err = run(sim_copy, con, "--margin-minutes", "5")
    assert code == 0, err
    sim = loader.SimulatorFile.open(sim_copy)
    shift = SERVER_NOW - timedelta(minutes=5) - sim.newest_change
    shift = timedelta(seconds=int(shift.total_seconds() // 1))
    assert shift.microseconds == 0 and shift > timedelta(days=300)

    newest = max(
        row[con.columns[name].index("ModifiedDate")]
        for name, t in REPLICATED_TABLES.items()
        if t.version_time_column
        for row in con.tables[name].values()
    )
    target = SERVER_NOW - timedelta(minutes=5)
    assert target - timedelta(seconds=1) < newest <= target

    seen_types: dict[str, set[type]] = {}
    for name, row in sim_rows(sim_copy):
        table = REPLICATED_TABLES[name]
        sent = con.tables[name][tuple(row[table.column_names.index(k)] for k in table.key)]
        for column, original, value in zip(table.columns, row, sent, strict=True):
            seen_types.setdefault(column.sql_type, set()).add(type(value))
            if original is None:
                assert value is None
                continue
            if column.sql_type == "datetime":
                assert value.microsecond % 1000 == 0
                moved = (name, column.name) not in loader.UNSHIFTED and original != loader.ZERO_DATE
                base = original + shift if moved else original
                assert value == base.replace(microsecond=base.microsecond // 1000 * 1000)
            elif column.sql_type == "uniqueidentifier":
                assert value == str(original) and len(value) == 36
    none = type(None)
    assert seen_types["datetime"] <= {datetime, none}
    assert seen_types["money"] <= {Decimal, none}
    assert seen_types["bit"] <= {bool, none}
    assert seen_types["int"] <= {int, none}
    assert seen_types["uniqueidentifier"] <= {str, none}
    assert seen_types["varbinary(50)"] <= {bytes, none}
    assert seen_types["nvarchar(max)"] <= {str, none}


def test_progress_output(sim_copy):
    con = RecordingDbApiDouble()
    code, out, _ = run(sim_copy, con, "--batch-size", "25")
    assert code == 0
    counts = sim_counts(sim_copy)
    lines = out.splitlines()
    assert lines[0].startswith("connecting to 127.0.0.1,14330 database ExigoSync as sa")
    assert any(line.startswith("server clock 2026-11-27 08:00:00; shift +") for line in lines)
    for name in QUEUE_TABLES:
        mine = [line for line in lines if line.startswith(f"  {name}: ")]
        assert mine[-1] == f"  {name}: {counts[name]:,}/{counts[name]:,} rows (100%)"
        assert len(mine) <= 11  # at most one line per tenth, plus the end
    assert lines[-1].startswith("done in ") and lines[-1].endswith("deleted (committed)")


def test_a_later_load_applies_exactly_the_simulator_changes(sim_copy):
    """Full load, simulator activity (new rows, edits, removed lines, deleted payments), then the
    default load: the double holds what a fresh full load of the advanced file holds."""
    con = RecordingDbApiDouble()
    assert run(sim_copy, con)[0] == 0
    first_clock = loader.SimulatorFile.open(sim_copy).clock
    rates = ActivityRates(line_removals=30.0, payment_deletes=30.0).scaled(5.0)
    SyncSimulator(sim_copy).advance(timedelta(minutes=40), rates)
    # The server clock stays put, so the shift stays the first load's (it never decreases) and a
    # fresh full load with that shift is the exact expectation.
    con.calls.clear()
    code, out, err = run(sim_copy, con, "--batch-size", "40")
    assert code == 0, err
    assert f"changes since {first_clock:%Y-%m-%d %H:%M:%S}" in out
    assert con.load_state[-1][0] == "changes"
    assert not [c for c in con.calls if c.sql.startswith("TRUNCATE")]

    deleted = {
        name: [c for c in con.executemanys(name) if c.sql.startswith("DELETE")]
        for name in ("OrderDetails", "Payments")
    }
    assert "keys no longer in the simulator deleted" in out
    assert deleted["OrderDetails"] and deleted["Payments"]
    # Only changed rows were sent, not the whole file.
    inserted = sum(len(c.rows) for c in con.executemanys() if c.sql.startswith("INSERT"))
    assert 0 < inserted < sum(sim_counts(sim_copy).values())

    fresh = RecordingDbApiDouble(server_now=con.server_now)
    fresh.load_state = list(con.load_state)  # same file, same shift
    assert run(sim_copy, fresh, "--full")[0] == 0
    for name in QUEUE_TABLES:
        assert con.tables[name] == fresh.tables[name], name


def test_with_freetds_rows_go_as_multi_row_inserts_without_parameter_arrays(sim_copy):
    """With FreeTDS (whose parameter arrays crash the process, pyodbc#459; the double raises
    DriverCrash if fast_executemany is used) a full load and a later load send the rows as
    multi-row INSERT ... VALUES statements within SQL Server's 2,100 parameters and 1,000 rows,
    (max) and binary columns typed for FreeTDS, and end up holding exactly what the Microsoft
    driver's parameter arrays give. The driver is read from the connection, not the settings."""
    freetds, odbc18 = RecordingDbApiDouble(driver=FREETDS), RecordingDbApiDouble()
    for step in range(2):
        if step:
            SyncSimulator(sim_copy).advance(timedelta(minutes=40), ActivityRates().scaled(5.0))
        code, out, err = run(sim_copy, freetds, "--batch-size", "700")
        assert code == 0, err
        assert "multi-row INSERT ... VALUES" in out
        assert run(sim_copy, odbc18, "--batch-size", "700")[0] == 0
    for name in QUEUE_TABLES:
        assert freetds.tables[name] == odbc18.tables[name], name
    assert not any(c.fast_executemany for c in freetds.calls)
    assert not [c for c in freetds.executemanys() if c.sql.startswith("INSERT")]
    customers = REPLICATED_TABLES["Customers"]
    width = len(customers.columns)
    inserts = freetds.inserts("Customers")
    assert inserts and all(len(c.params) <= 2099 and len(c.params) % width == 0 for c in inserts)
    assert max(len(c.params) for c in inserts) // width == (2100 - 1) // width
    sizes = inserts[0].input_sizes[:width]
    for column, size in zip(customers.columns, sizes, strict=True):
        if column.sql_type == "nvarchar(max)":
            assert size == (pyodbc.SQL_WLONGVARCHAR, 0, 0)
        elif column.sql_type.startswith("varbinary"):
            assert size == (pyodbc.SQL_VARBINARY, 50, 0)
        elif not column.sql_type.startswith("nvarchar"):
            assert size is None, column  # bound from the value


def test_the_shift_never_decreases_for_the_same_file(sim_copy):
    con = RecordingDbApiDouble()
    assert run(sim_copy, con)[0] == 0
    first_shift = con.load_state[-1][4]
    # The simulator runs 3 hours ahead while the server clock moved 1 minute.
    SyncSimulator(sim_copy).advance(timedelta(hours=3), ActivityRates())
    con.server_now = SERVER_NOW + timedelta(minutes=1)
    code, out, _ = run(sim_copy, con)
    assert code == 0
    assert con.load_state[-1][4] == first_shift
    assert "ahead of the server clock" in out  # rows dated in the future: said so
    # Real time passes without activity: the next load shifts more (newest lands at now - 5 min).
    con.server_now = SERVER_NOW + timedelta(days=2)
    assert run(sim_copy, con)[0] == 0
    assert con.load_state[-1][4] > first_shift


def test_plan_shift_whole_seconds_and_monotonic():
    now, newest = datetime(2026, 11, 27, 8, 0, 0, 500_000), datetime(2026, 1, 5, 6, 0, 0, 900_000)
    shift = loader.plan_shift(now, newest, timedelta(minutes=5), None)
    assert shift.microseconds == 0
    assert now - timedelta(minutes=5, seconds=1) < newest + shift <= now - timedelta(minutes=5)
    assert loader.plan_shift(now, newest, timedelta(minutes=5), shift + timedelta(hours=1)) == (
        shift + timedelta(hours=1)
    )


def test_an_error_rolls_back_and_never_shows_the_password(sim_copy):
    con = RecordingDbApiDouble(fail_on="[dbo].[Payments]")
    code, out, err = run(sim_copy, con)
    assert code == 1
    assert (con.commits, con.rollbacks) == (0, 1)
    assert err.startswith("error: Error: ")
    assert "***" in err
    assert PASSWORD not in out + err
    assert con.closed


def test_no_password_in_any_output_repr_or_description(sim_copy):
    con = RecordingDbApiDouble()
    code, out, err = run(sim_copy, con)
    assert code == 0
    settings = loader.ConnectionSettings.from_env(ENV)
    assert PASSWORD not in out + err + repr(settings) + settings.describe()
    # The connection string has it, and is only ever handed to the driver.
    assert PASSWORD in settings.connection_string()
    assert all(PASSWORD not in str(c) for c in con.calls)

    def refuse(s: loader.ConnectionSettings):
        raise pyodbc.InterfaceError("28000", f"Login failed; {s.connection_string()}")

    out_io, err_io = io.StringIO(), io.StringIO()
    code = loader.main([str(sim_copy)], env=ENV, connect=refuse, out=out_io, err=err_io)
    assert code == 1
    assert PASSWORD not in out_io.getvalue() + err_io.getvalue()
    assert "Login failed" in err_io.getvalue()


def test_connection_settings_from_env():
    with pytest.raises(loader.LoaderError, match="EXIGO_SYNC_TEST_MSSQL_PASSWORD"):
        loader.ConnectionSettings.from_env({k: v for k, v in ENV.items() if "PASSWORD" not in k})
    odbc18 = loader.ConnectionSettings.from_env(ENV).connection_string()
    assert "SERVER=127.0.0.1,14330" in odbc18 and "TrustServerCertificate=yes" in odbc18
    assert "DATABASE=ExigoSync" in odbc18
    freetds = loader.ConnectionSettings.from_env(
        {**ENV, "EXIGO_SYNC_TEST_MSSQL_DRIVER": "FreeTDS"}, database="Other"
    ).connection_string()
    assert "SERVER=127.0.0.1;PORT=14330;TDS_Version=7.4" in freetds
    assert "DATABASE=Other" in freetds


def test_another_simulator_file_needs_full(sim_copy, tmp_path):
    con = RecordingDbApiDouble()
    assert run(sim_copy, con)[0] == 0
    other = tmp_path / "other.duckdb"
    SyncSimulator.create(other, seed=6, customers=20, clock_start=datetime(2026, 1, 5))
    code, _, err = run(other, con)
    assert code == 1 and "--full" in err
    assert run(other, con, "--full")[0] == 0


def test_loader_sql_parses_as_tsql():
    table = REPLICATED_TABLES["OrderDetails"]
    statements = [
        loader.SERVER_NOW,
        loader.LAST_LOAD,
        loader.RECORD_LOAD,
        loader.truncate_sql(table.name),
        loader.insert_sql(table.name, table.column_names),
        loader.delete_by_key_sql(table.name, table.key),
        loader.keys_sql(table.name, table.key),
    ]
    for sql in statements:
        tree = sqlglot.parse_one(sql, read="tsql")
        assert not list(tree.find_all(exp.Command)), sql
    assert loader.insert_sql(table.name, table.column_names).count("?") == len(table.columns)
