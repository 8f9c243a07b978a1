"""`SyncSimulator`: a DuckDB file that behaves like an Exigo sync database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from exigo_sync.catalog import LOOKUP_TABLES, QUEUE_TABLES, REPLICATED_TABLES, Table, duckdb_type
from exigo_sync.simulator import clocks, ddl, deletions, emptied, pools, population
from exigo_sync.simulator.activity import (
    ActivityRates,
    ActivitySummary,
    lifecycle_params,
    run_substep,
)
from exigo_sync.simulator.clocks import (
    ClockModel,
    ClockModelError,
    data_clock,
    sim_clock,
    sim_utc_clock,
    simulation_time,
)
from exigo_sync.simulator.db import connect, default_expr, quote, scalar, table_columns
from exigo_sync.simulator.deletions import RestoreError
from exigo_sync.simulator.emptied import EmptiedError
from exigo_sync.simulator.refresh import SimulatedRefresh, run_refresh

# Activity is generated in sub-steps of at most this length so that a long advance still lets
# an order move through several statuses (each row changes at most once per sub-step).
SUBSTEP = timedelta(hours=1)

_T = TypeVar("_T")

# SQL Server's datetime range (ModifiedDate is a datetime): what an operator's stamp can be.
SQL_SERVER_DATETIME_MIN = datetime(1753, 1, 1)
SQL_SERVER_DATETIME_MAX = datetime(9999, 12, 31, 23, 59, 59, 997000)

# The setting holding the next id the activity generator hands out, per table it numbers.
_NEXT_ID_SETTINGS = {
    "Customers": "next_customer_id",
    "Orders": "next_order_id",
    "Payments": "next_payment_id",
}

# Columns the activity generator reads; dropping one would break generation, so
# drop_source_column refuses them (keys and ModifiedDate are refused anyway).
_GENERATOR_READS: dict[str, frozenset[str]] = {
    "Customers": frozenset(
        {
            "CustomerStatusID",
            "CustomerTypeID",
            "CreatedDate",
            "FirstName",
            "MiddleName",
            "LastName",
            "NameSuffix",
            "Company",
            "Email",
            "Phone",
            "MainAddress1",
            "MainAddress2",
            "MainCity",
            "MainState",
            "MainZip",
            "MainCountry",
            "MainCounty",
        }
    ),
    "Orders": frozenset(
        {
            "CustomerID",
            "OrderStatusID",
            "OrderTypeID",
            "ReturnOrderID",
            "ShippingTotal",
            "Total",
            "CurrencyCode",
            "WarehouseID",
            "FirstName",
            "LastName",
            "Address1",
            "Address2",
            "City",
            "State",
            "Zip",
            "Country",
        }
    ),
    "OrderDetails": frozenset(
        {
            "ItemID",
            "Quantity",
            "PriceEach",
            "PriceTotal",
            "Tax",
            "Weight",
            "WeightEach",
            "BusinessVolume",
            "BusinessVolumeEach",
            "CommissionableVolumeEach",
        }
    ),
    "Payments": frozenset({"OrderID", "CustomerID"}),
    "CustomerAccounts": frozenset({"BillingName"}),
    "CustomerSites": frozenset({"WebAlias"}),
}


class SimulatorError(RuntimeError):
    """The simulator file is missing, is not a simulator database, or a call was invalid."""


class SyncSimulator:
    """A simulated Exigo sync database in one DuckDB file.

    Every public method opens its own connection and closes it before returning: DuckDB locks
    the file while a connection is open, and dbt attaches it read-only right after a refresh.

    Clocks (see simulator.clocks): `now()` is the sync server's clock (SYSDATETIME()), which
    queue.Refresh and the pipeline read; ModifiedDate is stamped by the data's clock; both read
    the simulator's own clock (`simulation_time()`) through the file's clock model, which by
    default makes all three the same.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SimulatorError(f"no simulator database at {self.path}")
        with self.connect() as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_catalog = current_database() AND table_schema = 'sim' "
                "AND table_name IN ('Clock', 'Settings')"
            ).fetchone()
            if not found or found[0] != 2:
                raise SimulatorError(f"{self.path} is not a simulator database (no sim.Clock)")
            if "EmptiedTables" not in _sim_tables(con):
                raise SimulatorError(
                    f"{self.path} was made by an older simulator (no deletion archive in sim); "
                    "create it again"
                )

    def __repr__(self) -> str:
        return f"SyncSimulator({str(self.path)!r})"

    # --- creation ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        seed: int = 42,
        customers: int = 1000,
        orders_per_customer: float = 3.0,
        clock_start: datetime = datetime(2026, 1, 5),
        history_days: int = 30,
        overwrite: bool = False,
        server_clock_offset_minutes: float = 0.0,
        local_time_zone: str | None = None,
    ) -> SyncSimulator:
        """Create the database with a base population dated in the `history_days` before
        `clock_start`; the simulator's clock starts at `clock_start` (UTC with a
        `local_time_zone`, whose wall time then stamps the data and shows on the server clock;
        `server_clock_offset_minutes` sets the server clock apart from the data's: see
        simulator.clocks)."""
        if customers < 1:
            raise SimulatorError(f"customers must be at least 1, got {customers}")
        if orders_per_customer < 0:
            raise SimulatorError(
                f"orders_per_customer must not be negative, got {orders_per_customer}"
            )
        if history_days < 1:
            raise SimulatorError(f"history_days must be at least 1, got {history_days}")
        if clock_start.tzinfo is not None:
            raise SimulatorError("clock_start must be a naive time on the simulator's clock")
        if not 0 <= seed < 2**63:
            raise SimulatorError(f"seed must be between 0 and 2**63 - 1, got {seed}")
        model = _checked_model(ClockModel(server_clock_offset_minutes, local_time_zone))
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise SimulatorError(
                    f"{path} already exists; overwrite it explicitly to replace it"
                )
            path.unlink()
        Path(str(path) + ".wal").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)

        started = time.perf_counter()
        span = timedelta(days=history_days)
        params: dict[str, Any] = {
            "seed": seed,
            "step": 0,
            "n_customers": customers,
            "n_orders": round(customers * orders_per_customer),
            "start": clock_start - span,
            "span_us": int(span / timedelta(microseconds=1)),
            "clock": clock_start,
            "_dbo_columns": {},
            **pools.pool_params(),
            **lifecycle_params(ActivityRates()),
        }
        try:
            with connect(path) as con:
                con.execute("BEGIN TRANSACTION")
                ddl.create_schemas(con, primary_keys=False)
                pools.build_pools(con, seed)
                next_ids = population.populate(con, params)
                if model.local_time_zone is not None:
                    clocks.localise_population(con, model.local_time_zone)
                ddl.add_primary_keys(con)
                con.execute("INSERT INTO sim.Clock VALUES (?)", [clock_start])
                settings = {
                    "seed": seed,
                    "step": 0,
                    "customers": customers,
                    "orders_per_customer": orders_per_customer,
                    "clock_start": clock_start.isoformat(),
                    "history_days": history_days,
                    "create_seconds": round(time.perf_counter() - started, 3),
                    **next_ids,
                }
                con.execute(
                    "INSERT INTO sim.Settings SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                    [list(settings), [str(v) for v in settings.values()]],
                )
                clocks.write_model(con, model)
                con.execute("COMMIT")
        except BaseException:
            path.unlink(missing_ok=True)
            Path(str(path) + ".wal").unlink(missing_ok=True)
            raise
        return cls(path)

    # --- clock and activity -----------------------------------------------------------------

    @contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for the duration of a `with` block (closed afterwards)."""
        with connect(self.path, read_only=read_only) as con:
            yield con

    def now(self) -> datetime:
        """The sync server's clock, naive like SQL Server SYSDATETIME(): what queue.Refresh
        records as its call time and the pipeline reads as the source's "now"."""
        with self.connect() as con:
            return sim_clock(con)

    def utc_now(self) -> datetime:
        """The server's SYSUTCDATETIME(): with a local time zone the simulator's UTC time; with
        a server clock offset the server is a UTC server (= `now()`); else `now()`."""
        with self.connect() as con:
            return sim_utc_clock(con)

    def simulation_time(self) -> datetime:
        """The simulator's own clock, the activity generator's time line (UTC with a local
        time zone): `advance` moves it by exactly its duration, whatever the other clocks do."""
        with self.connect() as con:
            return simulation_time(con)

    def data_now(self) -> datetime:
        """What the clock that stamps ModifiedDate reads now: a change made now would carry it."""
        with self.connect() as con:
            return data_clock(con)

    def clock_model(self) -> ClockModel:
        """The file's clock model (the default one for a file made before the model existed)."""
        with self.connect() as con:
            return clocks.read_model(con)

    def set_clock_model(self, model: ClockModel) -> ClockModel:
        """Change the clock model from now on (e.g. `replace(sim.clock_model(),
        server_clock_offset_minutes=-5)` for a server clock that drifted). Stamps already
        written stay as they are: a source that switches to local time from UTC stamps its
        next changes hours earlier than its last ones, as a real one would."""
        checked = _checked_model(model)
        self._write(lambda con: clocks.write_model(con, checked))
        return checked

    def settings(self) -> dict[str, str]:
        with self.connect() as con:
            return dict(con.execute("SELECT Name, Value FROM sim.Settings").fetchall())

    @property
    def seed(self) -> int:
        return int(self.settings()["seed"])

    def advance(self, duration: timedelta, rates: ActivityRates | None = None) -> ActivitySummary:
        """Generate activity landing in dbo in [t, t + duration) of the simulator's clock t
        (`simulation_time()`), then move that clock to t + duration. All or nothing: one
        transaction. ModifiedDate is the landing time, or with `rates.replication_lag` L > 0 up
        to L earlier (never at or below the row's previous ModifiedDate): a change can land
        after a refresh that its ModifiedDate precedes. With a local time zone every stamp is
        then the local wall time of that (UTC) time; a server clock offset changes no stamp."""
        if duration < timedelta(0):
            raise SimulatorError(f"cannot advance the clock backwards ({duration})")
        rates = rates or ActivityRates()
        with self.connect(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                start = simulation_time(con)
                model = clocks.read_model(con)
                settings = dict(con.execute("SELECT Name, Value FROM sim.Settings").fetchall())
                p: dict[str, Any] = {
                    "seed": int(settings["seed"]),
                    "step": int(settings["step"]),
                    "next_customer_id": int(settings["next_customer_id"]),
                    "next_order_id": int(settings["next_order_id"]),
                    "next_payment_id": int(settings["next_payment_id"]),
                    "_dbo_columns": {},
                    "zone": model.local_time_zone,
                    **pools.pool_params(),
                }
                end = start + duration
                summary = ActivitySummary(started_at=start, finished_at=end)
                # A file made before the markets existed goes on in its one market.
                pools.ensure_markets(con)
                # The back office carries on behind an emptied table (see simulator.emptied).
                hidden = emptied.show_all(con)
                t0 = start
                while t0 < end:
                    t1 = min(t0 + SUBSTEP, end)
                    # Steps start at 1: step 0 is the base population.
                    p.update(
                        step=p["step"] + 1, t0=t0, span_us=(t1 - t0) // timedelta(microseconds=1)
                    )
                    run_substep(con, p, rates, summary)
                    t0 = t1
                emptied.hide_again(con, hidden)
                con.execute("UPDATE sim.Clock SET Now = ?", [end])
                for name in ("step", "next_customer_id", "next_order_id", "next_payment_id"):
                    con.execute(
                        "UPDATE sim.Settings SET Value = ? WHERE Name = ?", [str(p[name]), name]
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return summary

    # --- queue.Refresh ----------------------------------------------------------------------

    def refresh(self, start: datetime | None = None) -> SimulatedRefresh:
        """`exec queue.Refresh [start]` with the vendor's semantics (see simulator.refresh)."""
        if start is not None and start.tzinfo is not None:
            raise SimulatorError("start must be a naive source-clock time")
        with self.connect(read_only=False) as con:
            return run_refresh(con, start)

    def last_refresh_time(self) -> datetime | None:
        """The procedure's hidden "previous call" time (None before the first call)."""
        with self.connect() as con:
            row = con.execute("SELECT LastRefresh FROM queue.RefreshState").fetchone()
            return row[0] if row else None

    # --- truth API --------------------------------------------------------------------------

    def current_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of dbo.<table> now, ordered by key, column names as in dbo."""
        return self._rows("dbo", table)

    def queue_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of queue.<table> (the last refresh's snapshot), ordered by key."""
        return self._rows("queue", table)

    def changed_since(self, table: str, since: datetime) -> list[dict[str, Any]]:
        """Current dbo rows with ModifiedDate >= since; for OrderDetails, every current line of
        the orders changed since then (what a refresh from `since` would deliver)."""
        t = self._table(table)
        with self.connect() as con:
            if t.version_time_column is None:
                sql = (
                    f"SELECT d.* FROM dbo.{quote(t.name)} d WHERE d.OrderID IN "
                    "(SELECT OrderID FROM dbo.Orders WHERE ModifiedDate >= ?)"
                )
            else:
                sql = f"SELECT * FROM dbo.{quote(t.name)} WHERE {quote(t.version_time_column)} >= ?"
            order = ", ".join(quote(k) for k in t.key)
            return _dicts(con.execute(f"{sql} ORDER BY {order}", [since]))

    def deleted_payment_ids(self) -> set[int]:
        """PaymentIDs physically deleted from dbo.Payments so far (restored ones included)."""
        with self.connect() as con:
            return {
                r[0] for r in con.execute("SELECT PaymentID FROM sim.DeletedPayments").fetchall()
            }

    def deleted_payments(self) -> list[dict[str, Any]]:
        """PaymentID, OrderID, CustomerID and DeletedAt (the data's clock, like ModifiedDate) of
        deleted payments."""
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT PaymentID, OrderID, CustomerID, DeletedAt FROM sim.DeletedPayments "
                    "ORDER BY PaymentID, DeletedAt"
                )
            )

    def removed_order_lines(self) -> set[tuple[int, int]]:
        """(OrderID, OrderLine) of every order line removed from its order at the source so far
        (lines deleted with their order are `deletions("OrderDetails")` of another cause)."""
        with self.connect() as con:
            rows = con.execute("SELECT OrderID, OrderLine FROM sim.RemovedOrderLines").fetchall()
            return {(r[0], r[1]) for r in rows}

    def deletions(self, table: str) -> list[dict[str, Any]]:
        """Every physical deletion of a dbo.<table> row so far, in the order they happened: the
        key columns, DeletedAt (on the data's clock, like ModifiedDate: a deletion is a
        back-office event after the row's last change), Cause (see simulator.deletions:
        line_removed, order_deleted, payment_deleted, customer_purged, account_deleted,
        site_deleted) and RestoredAt (the server clock, `now()`, of the `restore_deleted`: an
        operator's action, on the clock an operator sees; None while the key stays deleted)."""
        t = self._table(table)
        cols = ", ".join(quote(k) for k in (*t.key, *deletions.BOOKKEEPING_COLUMNS))
        order = ", ".join(quote(k) for k in t.key)
        with self.connect() as con:
            return _dicts(
                con.execute(
                    f"SELECT {cols} FROM {deletions.archive(t.name)} ORDER BY DeletedAt, {order}"
                )
            )

    def deleted_keys(self, table: str) -> set[Any]:
        """Keys of dbo.<table> deleted at the source and not restored: a value for one-column
        keys, (OrderID, OrderLine) for OrderDetails."""
        t = self._table(table)
        cols = ", ".join(quote(k) for k in t.key)
        with self.connect() as con:
            rows = con.execute(
                f"SELECT {cols} FROM {deletions.archive(t.name)} WHERE RestoredAt IS NULL"
            ).fetchall()
        return {deletions.key_of(t.name, r) for r in rows}

    def deleted_rows(self, table: str) -> list[dict[str, Any]]:
        """The rows of dbo.<table> deleted and not restored, exactly as they were when deleted
        (dbo's columns as they are now), ordered by key."""
        t = self._table(table)
        order = ", ".join(quote(k) for k in t.key)
        with self.connect() as con:
            cols = ", ".join(quote(c) for c in table_columns(con, "dbo", t.name))
            return _dicts(
                con.execute(
                    f"SELECT {cols} FROM {deletions.archive(t.name)} WHERE RestoredAt IS NULL "
                    f"ORDER BY {order}"
                )
            )

    # --- resurrection and emptied tables (tests of contract rules H7 and H9) ----------------

    def restore_deleted(
        self, table: str, n: int | None = None, *, keys: Iterable[Any] | None = None
    ) -> list[Any]:
        """Make deleted keys of dbo.<table> reappear with their old row content and old
        ModifiedDate, as a sync re-initialisation or a database restore would: the queue never
        shows them (nothing changed since), only a key reconciliation can. A customer comes
        back with the account and site rows its purge deleted, an order with its lines.

        Give `n` (the n keys deleted longest ago that can come back: their customer, order,
        enroller and sponsor are in dbo) or `keys` (values, or (OrderID, OrderLine) tuples);
        returns the restored keys, in key order."""
        t = self._table(table)
        if (n is None) == (keys is None):
            raise SimulatorError("restore_deleted needs either n or keys")

        def work(con: duckdb.DuckDBPyConnection) -> list[Any]:
            for name in (t.name, *(c[0] for c in deletions.CASCADES.get(t.name, ()))):
                self._refuse_if_emptied(con, name, f"restore deleted {t.name} rows")
            return deletions.restore(con, t.name, n, keys, sim_clock(con))

        return self._write(work)

    def empty_table(self, table: str) -> int:
        """dbo.<table> reads empty from now on, as during a sync re-initialisation or after a
        permissions change, until `restore_table`; returns how many rows were hidden. The
        rows are not deleted (not in `deletions`), and activity goes on behind them."""
        t = self._table(table)
        return self._write(lambda con: emptied.empty(con, t.name, sim_clock(con)))

    def restore_table(self, table: str) -> int:
        """Bring an emptied dbo.<table>'s rows back, exactly as they were (plus what activity
        changed meanwhile); returns how many rows."""
        t = self._table(table)
        return self._write(lambda con: emptied.restore(con, t.name))

    def emptied_tables(self) -> dict[str, datetime]:
        """The dbo tables that read empty now, with the server-clock time (`now()`, what an
        operator sees) each was emptied."""
        with self.connect() as con:
            return emptied.emptied_tables(con)

    # --- operator edits (tests of date edge cases) ------------------------------------------

    def edit_row(
        self, table: str, key: Any, changes: Mapping[str, Any], modified_date: datetime
    ) -> dict[str, Any]:
        """Set `changes` (column: value) on one existing dbo.<table> row and stamp it
        `modified_date` exactly, as an operator's script or a back-office fix would: any SQL
        Server datetime, far future (9999-12-31 23:59:59.997) and far past (1753-01-01)
        included, and earlier than the row's current stamp (a clock that went back). The stamp
        is taken as given, on no clock model. An OrderDetails line (key (OrderID, OrderLine))
        has no ModifiedDate: its order is stamped instead, as a line edit does in Exigo; the
        order's totals are left as they are. Returns the row as it now is.

        The activity generator only changes rows stamped before its sub-step, so it leaves a
        row stamped in the future alone until its clock passes the stamp."""
        t = self._table(table)
        _check_stamp(modified_date, "modified_date")
        key_values = _key_values(t, key)
        changes = dict(changes)
        if "ModifiedDate" in changes:
            raise SimulatorError("give the new ModifiedDate as modified_date, not in changes")

        def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            self._refuse_if_emptied(con, t.name, "edit its rows")
            if t.version_time_column is None:
                self._refuse_if_emptied(con, "Orders", "stamp an order line's order")
            _check_columns(t, table_columns(con, "dbo", t.name), changes)
            where = " AND ".join(f"{quote(k)} = ?" for k in t.key)
            if not scalar(
                con, f"SELECT count(*) FROM dbo.{quote(t.name)} WHERE {where}", key_values
            ):
                raise SimulatorError(f"dbo.{t.name} has no row with key {key!r}")
            with _as_simulator_error(f"edit dbo.{t.name} {key!r}"):
                if changes:
                    sets = ", ".join(f"{quote(c)} = ?" for c in changes)
                    con.execute(
                        f"UPDATE dbo.{quote(t.name)} SET {sets} WHERE {where}",
                        [*changes.values(), *key_values],
                    )
                if t.version_time_column is not None:
                    con.execute(
                        f"UPDATE dbo.{quote(t.name)} SET {quote(t.version_time_column)} = ? "
                        f"WHERE {where}",
                        [modified_date, *key_values],
                    )
                else:
                    con.execute(
                        "UPDATE dbo.Orders SET ModifiedDate = ? WHERE OrderID = ?",
                        [modified_date, key_values[0]],
                    )
            return _dicts(
                con.execute(f"SELECT * FROM dbo.{quote(t.name)} WHERE {where}", key_values)
            )[0]

        return self._write(work)

    def insert_row(self, table: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one dbo.<table> row as an operator or an import would, e.g. a customer whose
        ModifiedDate is SQL Server's minimum datetime (1753-01-01). `values` names columns of
        dbo.<table> as it is now and must hold the key; every other NOT NULL column gets the
        plain default generated rows use for what they do not model (0, '', false,
        1900-01-01). ModifiedDate (any SQL Server datetime, taken as given) defaults to the data
        clock's now; an OrderDetails line stamps its order at the data clock's now, as adding
        a line does. Returns the row.

        Refused: a key already in dbo, a key deleted at the source and not restored
        (`restore_deleted` brings that back), and a row whose customer, order, enroller or
        sponsor is not in dbo. The activity generator's later ids start above an inserted
        Customers, Orders or Payments key."""
        t = self._table(table)
        values = dict(values)
        missing = [k for k in t.key if values.get(k) is None]
        if missing:
            raise SimulatorError(f"a dbo.{t.name} row needs its key: {', '.join(missing)}")
        if t.version_time_column is not None and values.get("ModifiedDate") is not None:
            _check_stamp(values["ModifiedDate"], "ModifiedDate")
        key_values = [values[k] for k in t.key]
        key = deletions.key_of(t.name, key_values)

        def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            self._refuse_if_emptied(con, t.name, "insert rows")
            if t.version_time_column is None:
                self._refuse_if_emptied(con, "Orders", "stamp an order line's order")
            present = table_columns(con, "dbo", t.name)
            _check_columns(t, present, values, key_may_be_set=True)
            if t.version_time_column is not None and values.get("ModifiedDate") is None:
                values["ModifiedDate"] = data_clock(con)
            where = " AND ".join(f"{quote(k)} = ?" for k in t.key)
            if scalar(con, f"SELECT count(*) FROM dbo.{quote(t.name)} WHERE {where}", key_values):
                raise SimulatorError(f"dbo.{t.name} already has a row with key {key!r}")
            deleted = scalar(
                con,
                f"SELECT count(*) FROM {deletions.archive(t.name)} WHERE {where} "
                "AND RestoredAt IS NULL",
                key_values,
            )
            if deleted:
                raise SimulatorError(
                    f"dbo.{t.name} {key!r} was deleted at the source: restore_deleted brings "
                    "it back"
                )
            for column, parent, parent_key in deletions.PARENTS[t.name]:
                value = values.get(column)
                if value is not None and not scalar(
                    con,
                    f"SELECT count(*) FROM dbo.{quote(parent)} WHERE {quote(parent_key)} = ?",
                    [value],
                ):
                    raise SimulatorError(
                        f"dbo.{t.name}.{column} = {value!r}: dbo.{parent} has no such row"
                    )
            known = {c.name: c for c in t.columns}
            exprs = [
                "?" if name in values else default_expr(known[name]) if name in known else "NULL"
                for name in present
            ]
            cols = ", ".join(quote(n) for n in present)
            with _as_simulator_error(f"insert into dbo.{t.name}"):
                con.execute(
                    f"INSERT INTO dbo.{quote(t.name)} ({cols}) VALUES ({', '.join(exprs)})",
                    [values[n] for n in present if n in values],
                )
            if t.version_time_column is None:
                con.execute(
                    "UPDATE dbo.Orders SET ModifiedDate = ? WHERE OrderID = ?",
                    [data_clock(con), values["OrderID"]],
                )
            if t.name in _NEXT_ID_SETTINGS:
                con.execute(
                    "UPDATE sim.Settings SET Value = greatest(Value::BIGINT, ?)::VARCHAR "
                    "WHERE Name = ?",
                    [int(key_values[0]) + 1, _NEXT_ID_SETTINGS[t.name]],
                )
            return _dicts(
                con.execute(f"SELECT * FROM dbo.{quote(t.name)} WHERE {where}", key_values)
            )[0]

        return self._write(work)

    def row_counts(self, schema: str = "dbo") -> dict[str, int]:
        """Rows per replicated table in `schema` ("dbo" or "queue")."""
        if schema not in ("dbo", "queue"):
            raise SimulatorError(f"schema must be 'dbo' or 'queue', got {schema!r}")
        with self.connect() as con:
            counts = {}
            for name in QUEUE_TABLES:
                counts[name] = int(scalar(con, f"SELECT count(*) FROM {schema}.{quote(name)}"))
            return counts

    def lookup_rows(self, table: str) -> list[tuple[int, str]]:
        if table not in LOOKUP_TABLES:
            raise SimulatorError(f"unknown lookup table {table!r}")
        with self.connect() as con:
            return con.execute(f"SELECT * FROM dbo.{quote(table)} ORDER BY 1").fetchall()

    # --- schema evolution (tests of contract rule B3) -------------------------------------

    def add_source_column(self, table: str, column: str, sql_type: str) -> None:
        """Add a column to dbo.<table>; every later refresh carries it into the queue. Existing
        and newly generated rows hold NULL until someone writes a value."""
        t = self._table(table)
        self._check_identifier(column)
        ddb_type = duckdb_type(sql_type)
        with self.connect(read_only=False) as con:
            self._refuse_if_emptied(con, t.name, "change its columns")
            if column.lower() in {c.lower() for c in table_columns(con, "dbo", t.name)}:
                raise SimulatorError(f"dbo.{t.name} already has a column {column!r}")
            con.execute(f"ALTER TABLE dbo.{quote(t.name)} ADD COLUMN {quote(column)} {ddb_type}")
            # Rows deleted from now on keep the new column too; a name the archive still has
            # from an earlier drop keeps its old values.
            archived = {c.lower() for c in table_columns(con, "sim", "Deleted" + t.name)}
            if column.lower() not in archived:
                con.execute(
                    f"ALTER TABLE {deletions.archive(t.name)} ADD COLUMN {quote(column)} {ddb_type}"
                )

    def drop_source_column(self, table: str, column: str) -> None:
        """Drop a column from dbo.<table>; later refreshes no longer carry it."""
        t = self._table(table)
        self._check_identifier(column)
        protected = set(t.key) | {"ModifiedDate"} | _GENERATOR_READS[t.name]
        if column in protected:
            raise SimulatorError(
                f"dbo.{t.name}.{column} is a key, the version time or read by the activity "
                "generator; it cannot be dropped"
            )
        with self.connect(read_only=False) as con:
            self._refuse_if_emptied(con, t.name, "change its columns")
            if column not in table_columns(con, "dbo", t.name):
                raise SimulatorError(f"dbo.{t.name} has no column {column!r}")
            # The deletion archive keeps the column: rows deleted before still had it.
            con.execute(f"ALTER TABLE dbo.{quote(t.name)} DROP COLUMN {quote(column)}")

    # --- helpers ----------------------------------------------------------------------------

    def _rows(self, schema: str, table: str) -> list[dict[str, Any]]:
        t = self._table(table)
        order = ", ".join(quote(k) for k in t.key)
        with self.connect() as con:
            return _dicts(con.execute(f"SELECT * FROM {schema}.{quote(t.name)} ORDER BY {order}"))

    @staticmethod
    def _table(table: str) -> Table:
        try:
            return REPLICATED_TABLES[table]
        except KeyError:
            raise SimulatorError(
                f"unknown table {table!r}; expected one of {', '.join(REPLICATED_TABLES)}"
            ) from None

    def _write(self, work: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        """`work` in one transaction on a read-write connection: all or nothing. A refusal
        (RestoreError, EmptiedError) becomes a SimulatorError."""
        with self.connect(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                out = work(con)
                con.execute("COMMIT")
            except (RestoreError, EmptiedError) as exc:
                con.execute("ROLLBACK")
                raise SimulatorError(str(exc)) from None
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return out

    @staticmethod
    def _refuse_if_emptied(con: duckdb.DuckDBPyConnection, table: str, action: str) -> None:
        if table in emptied.emptied_tables(con):
            raise SimulatorError(f"dbo.{table} is emptied: restore_table it first to {action}")

    @staticmethod
    def _check_identifier(column: str) -> None:
        # SQL Server takes any name of 1 to 128 characters as a delimited identifier ([...]), so
        # the simulator does too: quotes, semicolons and all (a consumer must quote them).
        if not 0 < len(column) <= 128 or "\x00" in column:
            raise SimulatorError(f"not a valid column name: {column!r}")


def _checked_model(model: ClockModel) -> ClockModel:
    try:
        return clocks.checked(model)
    except ClockModelError as exc:
        raise SimulatorError(str(exc)) from None


def _check_stamp(value: Any, what: str) -> None:
    """A ModifiedDate an operator sets: a naive datetime SQL Server's datetime can hold."""
    if not isinstance(value, datetime):
        raise SimulatorError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is not None:
        raise SimulatorError(f"{what} must be a naive time, like the source's stamps")
    if not SQL_SERVER_DATETIME_MIN <= value <= SQL_SERVER_DATETIME_MAX:
        raise SimulatorError(
            f"{what} {value} is outside SQL Server's datetime range "
            f"({SQL_SERVER_DATETIME_MIN} to {SQL_SERVER_DATETIME_MAX})"
        )


def _key_values(table: Table, key: Any) -> list[Any]:
    values = list(key) if isinstance(key, tuple | list) else [key]
    if len(values) != len(table.key) or any(v is None for v in values):
        raise SimulatorError(f"dbo.{table.name}'s key is ({', '.join(table.key)}), got {key!r}")
    return values


def _check_columns(
    table: Table, present: list[str], values: Mapping[str, Any], *, key_may_be_set: bool = False
) -> None:
    unknown = [c for c in values if c not in present]
    if unknown:
        raise SimulatorError(f"dbo.{table.name} has no column {', '.join(map(repr, unknown))}")
    if not key_may_be_set and set(values) & set(table.key):
        raise SimulatorError(f"dbo.{table.name}'s key ({', '.join(table.key)}) cannot change")


@contextmanager
def _as_simulator_error(action: str) -> Iterator[None]:
    """A value DuckDB refuses (wrong type, NULL in a NOT NULL column) as a SimulatorError."""
    try:
        yield
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SimulatorError(f"cannot {action}: {first}") from None


def _sim_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'sim'"
    ).fetchall()
    return {r[0] for r in rows}


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
