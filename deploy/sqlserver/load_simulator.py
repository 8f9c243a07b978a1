"""Fill the sandbox's ExigoSync.dbo from a simulator DuckDB file, over pyodbc.

    exigo-sync simulate create data/exigo_source.duckdb --customers 2000
    python deploy/sqlserver/load_simulator.py data/exigo_source.duckdb          # first: full load
    exigo-sync simulate advance data/exigo_source.duckdb --minutes 30
    python deploy/sqlserver/load_simulator.py data/exigo_source.duckdb          # then: the changes

Connection: the environment variables the live test suite reads (tests/sqlserver):
EXIGO_SYNC_TEST_MSSQL_SERVER, _USER, _PASSWORD (required), _PORT (1433), _DRIVER ("ODBC Driver 18
for SQL Server"; FreeTDS works too), _TRUST_CERT (yes). The database is --database (ExigoSync),
not _DATABASE: the live tests may point that at the warehouse. The login needs to write dbo
(the sandbox's sa; neither exigo-sync login can). The password is never printed.

Modes:
- full (--full, or the first load): every dbo table emptied (TRUNCATE) and reloaded.
- changes (--since TIME, or by default after a first load): rows whose ModifiedDate (simulator
  clock) is >= TIME are replaced (delete + insert by key; order lines: every line of such an
  order), then keys no longer in the simulator are deleted: removed order lines, deleted
  payments. By default TIME is the simulator clock of the previous load minus --lookback-minutes
  (set it to the --replication-lag-minutes you advance the simulator with: such changes land with
  an earlier ModifiedDate).
Either way in one transaction, so a queue.Refresh never sees half a load. Rows are sent in
batches (--batch-size) with explicit parameter types: through pyodbc's fast_executemany (parameter
arrays) where the driver in use is Microsoft's ODBC Driver, which handles them; with any other
driver (FreeTDS: its parameter arrays crash the process, pyodbc#459) as multi-row INSERT ... VALUES
statements within SQL Server's 2,100 parameters (exigo_sync.sqlserver.rows). The driver is read
from the connection (SQLGetInfo(SQL_DRIVER_NAME)), not from the settings.

The clock. The simulator has its own clock; SQL Server's is real, and queue.Refresh compares
ModifiedDate with GETDATE() (the first call takes the last 24 hours, exigo-sync's window starts
from the server's clock). Every instant is therefore moved by one shift, whole seconds, chosen so
the newest change in the file lands --margin-minutes (5) before the server's now: the data looks
as if it had just happened, and durations, order and the gaps between changes are kept. Shifted:
every datetime column of the six tables (ModifiedDate, CreatedDate, OrderDate, PaymentDate, ...),
except Customers.BirthDate (a birthday is no event) and the SQL Server zero date 1900-01-01 (the
simulator's "no date"). Later loads of the same file never shift less than the previous one, so a
row's ModifiedDate never moves backwards on the server; when the simulator has run ahead of the
real clock (advanced by more than the real time since the last load), its newest changes land in
the future and the loader says so. Times are sent truncated to milliseconds (SQL Server's datetime
keeps 1/300 s). Each load is recorded in sandbox.LoadState (shift, simulator clock).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb

from exigo_sync.catalog import QUEUE_TABLES, REPLICATED_TABLES, Column, Table
from exigo_sync.dates import parse_source_datetime
from exigo_sync.sqlserver import rows as mssql_rows

ENV = "EXIGO_SYNC_TEST_MSSQL_"
DEFAULT_DRIVER = "ODBC Driver 18 for SQL Server"
DEFAULT_DATABASE = "ExigoSync"
DEFAULT_BATCH_SIZE = 1000
DEFAULT_MARGIN = timedelta(minutes=5)

# Columns that are not instants on the source clock: left as they are.
UNSHIFTED: frozenset[tuple[str, str]] = frozenset({("Customers", "BirthDate")})
ZERO_DATE = datetime(1900, 1, 1)

# The SQL the loader runs on the server (bound parameters; T-SQL, parsed in the tests).
SERVER_NOW = "SELECT GETDATE()"
LAST_LOAD = (
    "SELECT TOP 1 [SimulatorFile], [SimulatorSeed], [SimulatorClock], [ShiftSeconds] "
    "FROM [sandbox].[LoadState] ORDER BY [LoadID] DESC"
)
RECORD_LOAD = (
    "INSERT INTO [sandbox].[LoadState] ([LoadedAt], [Mode], [SimulatorFile], [SimulatorSeed], "
    "[SimulatorClock], [SimulatorSince], [ShiftSeconds], [RowsWritten], [RowsDeleted]) "
    "VALUES (GETDATE(), ?, ?, ?, ?, ?, ?, ?, ?)"
)


def q(identifier: str) -> str:
    return "[" + identifier.replace("]", "]]") + "]"


def dq(identifier: str) -> str:
    """A DuckDB (double-quoted) identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def truncate_sql(table: str) -> str:
    return f"TRUNCATE TABLE [dbo].{q(table)}"


def insert_head(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO [dbo].{q(table)} ({', '.join(q(c) for c in columns)})"


def insert_sql(table: str, columns: Sequence[str]) -> str:
    return mssql_rows.values_statement(insert_head(table, columns), len(columns), 1)


def delete_by_key_sql(table: str, key: Sequence[str]) -> str:
    return f"DELETE FROM [dbo].{q(table)} WHERE " + " AND ".join(f"{q(k)} = ?" for k in key)


def keys_sql(table: str, key: Sequence[str]) -> str:
    return f"SELECT {', '.join(q(k) for k in key)} FROM [dbo].{q(table)}"


# --- connection --------------------------------------------------------------------------------


class LoaderError(RuntimeError):
    """A load cannot go on; the message names the reason (never a secret)."""


@dataclass(frozen=True)
class ConnectionSettings:
    server: str
    user: str
    password: str = field(repr=False)
    port: str = "1433"
    driver: str = DEFAULT_DRIVER
    trust_cert: bool = True
    database: str = DEFAULT_DATABASE

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, database: str = DEFAULT_DATABASE
    ) -> ConnectionSettings:
        env = os.environ if env is None else env
        missing = [ENV + n for n in ("SERVER", "USER", "PASSWORD") if not env.get(ENV + n)]
        if missing:
            raise LoaderError(f"set {', '.join(missing)} (see deploy/sqlserver/README.md)")
        return cls(
            server=env[ENV + "SERVER"],
            user=env[ENV + "USER"],
            password=env[ENV + "PASSWORD"],
            port=env.get(ENV + "PORT") or "1433",
            driver=env.get(ENV + "DRIVER") or DEFAULT_DRIVER,
            trust_cert=(env.get(ENV + "TRUST_CERT") or "yes").lower() in ("1", "true", "yes"),
            database=database,
        )

    @property
    def is_freetds(self) -> bool:
        return "freetds" in self.driver.lower()

    def connection_string(self) -> str:
        """The ODBC connection string, as tests/sqlserver/test_live_sqlserver.py builds it.
        It holds the password: never print it."""
        parts = {
            "DRIVER": "{" + self.driver + "}",
            "DATABASE": self.database,
            "UID": self.user,
            "PWD": "{" + self.password.replace("}", "}}") + "}",
        }
        if self.is_freetds:
            # FreeTDS needs TDS >= 7.3 for date/time types; 7.4 is SQL Server 2012+.
            parts.update({"SERVER": self.server, "PORT": self.port, "TDS_Version": "7.4"})
        else:
            parts.update(
                {
                    "SERVER": f"{self.server},{self.port}",
                    "TrustServerCertificate": "yes" if self.trust_cert else "no",
                }
            )
        return ";".join(f"{k}={v}" for k, v in parts.items())

    def describe(self) -> str:
        return (
            f"{self.server},{self.port} database {self.database} as {self.user} "
            f"(driver {self.driver})"
        )

    def scrub(self, text: str) -> str:
        """`text` without the password (driver messages may echo connection attributes)."""
        text = re.sub(r"(?i)(PWD|PASSWORD)=\{?[^;]*", r"\1=***", text)
        return text.replace(self.password, "***") if self.password else text


def pyodbc_connect(settings: ConnectionSettings) -> Any:
    import pyodbc

    # autocommit off: the whole load is one transaction, committed at the end.
    return pyodbc.connect(settings.connection_string(), autocommit=False)


# --- types and values --------------------------------------------------------------------------


def input_size(column: Column, pyodbc: Any) -> tuple[int, int, int]:
    """The ODBC parameter type of a catalogue column, for cursor.setinputsizes: with explicit
    types fast_executemany needs no SQLDescribeParam round trip, datetime goes as datetime(3)
    (not datetime2: pyodbc#540, "fractional second precision exceeds the scale"), and an
    nvarchar(max) column is bound as a (max) parameter instead of a huge fixed buffer."""
    t = column.sql_type.lower()
    if t == "int":
        return (pyodbc.SQL_INTEGER, 0, 0)
    if t == "bit":
        return (pyodbc.SQL_BIT, 0, 0)
    if t == "datetime":
        return (pyodbc.SQL_TYPE_TIMESTAMP, 23, 3)
    if t == "money":
        return (pyodbc.SQL_DECIMAL, 19, 4)
    if t == "uniqueidentifier":
        # Sent as text; SQL Server converts it to uniqueidentifier on insert.
        return (pyodbc.SQL_WVARCHAR, 36, 0)
    if m := re.fullmatch(r"nvarchar\((\d+|max)\)", t):
        return (pyodbc.SQL_WVARCHAR, 0 if m[1] == "max" else int(m[1]), 0)
    if m := re.fullmatch(r"varbinary\((\d+|max)\)", t):
        return (pyodbc.SQL_VARBINARY, 0 if m[1] == "max" else int(m[1]), 0)
    raise LoaderError(f"no ODBC parameter type for SQL Server type {column.sql_type!r}")


def _millis(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def converter(table: str, column: Column, shift: timedelta) -> Callable[[Any], Any]:
    """DuckDB value -> the parameter value sent for this column."""
    t = column.sql_type.lower()
    if t == "datetime":
        moved = (table, column.name) not in UNSHIFTED

        def to_datetime(v: Any) -> Any:
            if v is None:
                return None
            if moved and v != ZERO_DATE:
                v = v + shift
            return _millis(v)

        return to_datetime
    if t == "uniqueidentifier":
        return lambda v: None if v is None else str(v if isinstance(v, uuid.UUID) else uuid.UUID(v))
    if t.startswith("varbinary"):
        return lambda v: None if v is None else bytes(v)
    if t == "money":
        return lambda v: None if v is None else Decimal(v)
    return lambda v: v


# --- the simulator file --------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatorFile:
    path: Path
    seed: str
    clock: datetime
    newest_change: datetime
    columns: dict[str, list[Column]]  # per table: catalogue columns present in the file
    extra_columns: dict[str, list[str]]  # per table: columns the catalogue does not know

    @classmethod
    def open(cls, path: Path) -> SimulatorFile:
        if not path.exists():
            raise LoaderError(f"no simulator file {path} (exigo-sync simulate create {path})")
        con = duckdb.connect(str(path), read_only=True)
        try:
            clock = con.execute("SELECT Now FROM sim.Clock").fetchone()[0]
            seed = con.execute("SELECT Value FROM sim.Settings WHERE Name = 'seed'").fetchone()
            newest = [
                con.execute(
                    f"SELECT max({dq(t.version_time_column)}) FROM dbo.{dq(t.name)}"
                ).fetchone()[0]
                for t in REPLICATED_TABLES.values()
                if t.version_time_column
            ]
            columns, extra = {}, {}
            for name, table in REPLICATED_TABLES.items():
                present = [
                    r[0]
                    for r in con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE "
                        "table_catalog = current_database() AND table_schema = 'dbo' AND "
                        "table_name = ? ORDER BY ordinal_position",
                        [name],
                    ).fetchall()
                ]
                columns[name] = [c for c in table.columns if c.name in present]
                known = set(table.column_names)
                extra[name] = [c for c in present if c not in known]
        finally:
            con.close()
        return cls(
            path=path,
            seed=str(seed[0]) if seed else "",
            clock=clock,
            newest_change=max((n for n in newest if n is not None), default=clock),
            columns=columns,
            extra_columns=extra,
        )

    @property
    def identity(self) -> str:
        return str(self.path.resolve())

    def rows(
        self, table: Table, since: datetime | None, batch_size: int
    ) -> tuple[int, Iterator[list[tuple]]]:
        """(count, batches) of the rows to write: all of them, or those changed since `since`
        (order lines: every line of an order changed since then). Ordered by key."""
        cols = ", ".join(f"d.{dq(c.name)}" for c in self.columns[table.name])
        where, params = "", []
        if since is not None:
            if table.version_time_column:
                where, params = f"WHERE d.{dq(table.version_time_column)} >= ?", [since]
            else:
                where = (
                    'WHERE d."OrderID" IN (SELECT "OrderID" FROM dbo."Orders" '
                    'WHERE "ModifiedDate" >= ?)'
                )
                params = [since]
        order = ", ".join(f"d.{dq(k)}" for k in table.key)
        source = f"FROM dbo.{dq(table.name)} AS d {where}"
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            count = con.execute(f"SELECT count(*) {source}", params).fetchone()[0]
        except BaseException:
            con.close()
            raise

        def batches() -> Iterator[list[tuple]]:
            try:
                cur = con.execute(f"SELECT {cols} {source} ORDER BY {order}", params)
                while chunk := cur.fetchmany(batch_size):
                    yield chunk
            finally:
                con.close()

        return int(count), batches()

    def keys(self, table: Table) -> set[tuple]:
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            cols = ", ".join(dq(k) for k in table.key)
            rows = con.execute(f"SELECT {cols} FROM dbo.{dq(table.name)}").fetchall()
            return {tuple(r) for r in rows}
        finally:
            con.close()


# --- the load ------------------------------------------------------------------------------------


def plan_shift(
    server_now: datetime,
    newest_change: datetime,
    margin: timedelta,
    previous: timedelta | None,
) -> timedelta:
    """Whole seconds that move the newest change to `margin` before the server's now; never less
    than `previous` (the same file's last shift), so no ModifiedDate moves backwards."""
    wanted = server_now - margin - newest_change
    wanted = timedelta(seconds=math.floor(wanted.total_seconds()))
    return wanted if previous is None else max(previous, wanted)


class Progress:
    """One line per tenth of a table (and its end): readable in a log, alive on a terminal."""

    def __init__(self, out: TextIO, label: str, total: int):
        self.out, self.label, self.total = out, label, total
        self.done, self.reported = 0, -1

    def add(self, n: int) -> None:
        self.done += n
        tenth = 10 if self.total == 0 else self.done * 10 // self.total
        if tenth > self.reported and (tenth < 10 or self.done >= self.total):
            self.reported = tenth
            pct = 100 if self.total == 0 else self.done * 100 // self.total
            line = f"  {self.label}: {self.done:,}/{self.total:,} rows ({pct}%)"
            print(line, file=self.out, flush=True)


@dataclass
class LoadResult:
    mode: str
    shift: timedelta
    since: datetime | None
    written: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


class Loader:
    def __init__(
        self,
        con: Any,
        sim: SimulatorFile,
        *,
        out: TextIO,
        batch_size: int = DEFAULT_BATCH_SIZE,
        fast_executemany: bool = True,
        margin: timedelta = DEFAULT_MARGIN,
        pyodbc: Any = None,
    ):
        if batch_size < 1:
            raise LoaderError("--batch-size must be at least 1")
        self.con, self.sim, self.out = con, sim, out
        self.batch_size, self.margin = batch_size, margin
        if pyodbc is None:
            import pyodbc
        self.pyodbc = pyodbc
        # Parameter arrays only where the driver in use is proven to take them (FreeTDS crashes).
        self.fast = fast_executemany and mssql_rows.path(con) == "fast_executemany"

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)  # progress shows even when piped (make)

    def _cursor(self) -> Any:
        cur = self.con.cursor()
        if self.fast:
            cur.fast_executemany = True
        return cur

    def run(
        self,
        *,
        full: bool = False,
        since: datetime | None = None,
        lookback: timedelta | None = None,
    ) -> LoadResult:
        """Full load, or the changes since `since` (default: the previous load's simulator clock
        minus `lookback`), in one transaction."""
        lookback = lookback or timedelta(0)
        # Every result read to its end before the next statement: without MARS, SQL Server
        # refuses a statement on another cursor while one still has results pending.
        cur = self._cursor()
        ((server_now,),) = cur.execute(SERVER_NOW).fetchall()
        last = next(iter(cur.execute(LAST_LOAD).fetchall()), None)
        cur.close()
        same_file = last is not None and (last[0], last[1]) == (self.sim.identity, self.sim.seed)
        if not full and since is None:
            if last is None:
                full = True
            elif not same_file:
                raise LoaderError(
                    f"dbo holds a load of another simulator file ({last[0]}, seed {last[1]}): "
                    "load this one with --full"
                )
            elif self.sim.clock < last[2]:
                raise LoaderError(
                    f"the simulator clock ({self.sim.clock}) is before the last load's "
                    f"({last[2]}): the file was recreated; load it with --full"
                )
            else:
                since = last[2] - lookback
        previous = timedelta(seconds=int(last[3])) if same_file else None
        shift = plan_shift(server_now, self.sim.newest_change, self.margin, previous)
        landed = self.sim.newest_change + shift
        self.say(
            f"simulator {self.sim.path}: clock {self.sim.clock:%Y-%m-%d %H:%M:%S}, newest change "
            f"{self.sim.newest_change:%Y-%m-%d %H:%M:%S}"
        )
        self.say(
            f"server clock {server_now:%Y-%m-%d %H:%M:%S}; shift {_fmt(shift)} (the newest change "
            f"lands at {landed:%Y-%m-%d %H:%M:%S})"
        )
        if landed > server_now:
            self.say(
                f"warning: the simulator is {_fmt(landed - server_now)} ahead of the server clock; "
                "its newest changes are dated in the future until the real clock gets there "
                "(advance it by about the real time between loads)"
            )
        for name, extra in self.sim.extra_columns.items():
            if extra:
                self.say(f"warning: {name}: not in the catalogue, not loaded: {', '.join(extra)}")

        result = LoadResult("full" if full else "changes", shift, None if full else since)
        self.say(
            "full load: every dbo table replaced"
            if full
            else f"changes since {since:%Y-%m-%d %H:%M:%S} (simulator clock)"
        )
        self.say(
            "rows sent with fast_executemany (parameter arrays)"
            if self.fast
            else "rows sent as multi-row INSERT ... VALUES (no parameter arrays with this driver)"
        )
        started = time.monotonic()
        try:
            for name in QUEUE_TABLES:
                table = REPLICATED_TABLES[name]
                if full:
                    cur = self._cursor()
                    cur.execute(truncate_sql(name))
                    result.written[name] = self._write(table, None, shift, replace=False)
                else:
                    result.written[name] = self._write(table, since, shift, replace=True)
                    result.deleted[name] = self._delete_vanished(table)
            cur = self._cursor()
            cur.execute(
                RECORD_LOAD,
                result.mode,
                self.sim.identity,
                self.sim.seed,
                self.sim.clock,
                result.since,
                int(shift.total_seconds()),
                sum(result.written.values()),
                sum(result.deleted.values()),
            )
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        self.say(
            f"done in {time.monotonic() - started:.1f} s: {sum(result.written.values()):,} rows "
            f"written, {sum(result.deleted.values()):,} deleted (committed)"
        )
        return result

    def _write(self, table: Table, since: datetime | None, shift: timedelta, replace: bool) -> int:
        columns = self.sim.columns[table.name]
        names = [c.name for c in columns]
        convert = [converter(table.name, c, shift) for c in columns]
        sizes = [input_size(c, self.pyodbc) for c in columns]
        key_positions = [names.index(k) for k in table.key]
        total, batches = self.sim.rows(table, since, self.batch_size)
        progress = Progress(self.out, table.name, total)
        head = insert_head(table.name, names)
        delete = delete_by_key_sql(table.name, table.key)
        for chunk in batches:
            rows = [tuple(f(v) for f, v in zip(convert, row, strict=True)) for row in chunk]
            if replace:
                cur = self._cursor()
                cur.setinputsizes([sizes[i] for i in key_positions])
                cur.executemany(delete, [tuple(r[i] for i in key_positions) for r in rows])
            cur = self._cursor()
            if self.fast:
                cur.setinputsizes(sizes)
                cur.executemany(mssql_rows.values_statement(head, len(names), 1), rows)
            else:
                mssql_rows.insert_values(cur, head, [c.sql_type for c in columns], rows)
            progress.add(len(rows))
        if total == 0:
            progress.add(0)
        return total

    def _delete_vanished(self, table: Table) -> int:
        cur = self._cursor()
        on_server = {tuple(r) for r in cur.execute(keys_sql(table.name, table.key)).fetchall()}
        gone = sorted(on_server - self.sim.keys(table))
        if gone:
            sizes = [input_size(table.column(k), self.pyodbc) for k in table.key]
            for i in range(0, len(gone), self.batch_size):
                cur = self._cursor()
                cur.setinputsizes(sizes)
                cur.executemany(
                    delete_by_key_sql(table.name, table.key), gone[i : i + self.batch_size]
                )
            self.say(f"  {table.name}: {len(gone):,} keys no longer in the simulator deleted")
        return len(gone)


def _fmt(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else "+"
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{days}d {hours:02d}:{minutes:02d}:{secs:02d}"


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="load_simulator.py",
        description="Fill ExigoSync.dbo from a simulator DuckDB file (see the module docstring).",
    )
    p.add_argument(
        "simulator", type=Path, help="simulator DuckDB file (exigo-sync simulate create)"
    )
    p.add_argument("--database", default=DEFAULT_DATABASE, help="sync database (ExigoSync)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="replace every dbo table")
    mode.add_argument("--since", help="apply rows changed since this simulator-clock time")
    p.add_argument(
        "--lookback-minutes",
        type=float,
        default=0.0,
        help="default --since: the last load's simulator clock minus this (replication lag)",
    )
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    p.add_argument(
        "--margin-minutes",
        type=float,
        default=DEFAULT_MARGIN.total_seconds() / 60,
        help="the newest change lands this long before the server's now",
    )
    p.add_argument(
        "--no-fast-executemany",
        action="store_true",
        help="never use parameter arrays, even with Microsoft's driver (they are used only "
        "where the driver in use handles them; with FreeTDS rows go as multi-row INSERTs)",
    )
    return p.parse_args(list(argv) if argv is not None else None)


def main(
    argv: Iterable[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    connect: Callable[[ConnectionSettings], Any] = pyodbc_connect,
    out: TextIO | None = None,
    err: TextIO | None = None,
    pyodbc: Any = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = parse_args(argv)
    settings: ConnectionSettings | None = None
    con = None
    try:
        since = None
        if args.since is not None:
            try:
                since = parse_source_datetime(args.since)
            except ValueError as exc:
                raise LoaderError(f"--since: {exc}") from None
        settings = ConnectionSettings.from_env(env, database=args.database)
        sim = SimulatorFile.open(args.simulator)
        print(f"connecting to {settings.describe()}", file=out, flush=True)
        con = connect(settings)
        Loader(
            con,
            sim,
            out=out,
            batch_size=args.batch_size,
            fast_executemany=not args.no_fast_executemany,
            margin=timedelta(minutes=args.margin_minutes),
            pyodbc=pyodbc,
        ).run(full=args.full, since=since, lookback=timedelta(minutes=args.lookback_minutes))
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LoaderError) else str(exc)
        if settings is not None:
            message = settings.scrub(message)
        print(f"error: {message}", file=err)
        return 1
    finally:
        if con is not None:
            con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
