"""The SQL Server warehouse: a short-lived DB-API connection opened as dbt-sqlserver opens it
(`sqlserver.connect`: pyodbc or mssql-python, imported only on this path).

- autocommit by default: each ledger / lock statement commits on its own;
- `transaction()`: autocommit off, commit at the end, roll back on any exception (with
  `XACT_ABORT ON`, dbt-sqlserver's session default, a server-side error or a timeout also rolls
  the transaction back on the server); when the rollback itself fails (or autocommit cannot be
  switched back on) the connection's transaction state is unknown, so it is closed and every
  later use raises WarehouseError saying why, rather than run statements outside any
  transaction;
- `execute()` reads a statement's whole result and drains every further result before
  returning, so no result stays pending on the connection (SQL Server without MARS refuses the
  next statement while one is, pyodbc#424) and an error raised after a first result surfaces;
- every statement runs through `sqlserver.cancel`: a stop (SIGTERM, Ctrl-C, the flow timeout)
  cancels a ledger / lock / landing statement waiting behind another session's lock instead of
  waiting for it (R4);
- `insert_rows()` sends many rows the way the driver in use is proven to take them
  (`sqlserver.rows`: parameter arrays only with Microsoft's drivers);
- driver errors become `WarehouseBusy` (transient: connection lost, timeout, deadlock; worth a
  retry) or `WarehouseError` (permanent), one secret-free line naming the statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from exigo_sync import sqlserver as mssql
from exigo_sync.profiles import Target
from exigo_sync.sqlserver import rows as mssql_rows
from exigo_sync.sqlserver.cancel import StatementRunner
from exigo_sync.warehouse.errors import WarehouseBusy, WarehouseError


class Result:
    """A statement's rows (tuples), fetched whole: the ledger reads a handful of rows."""

    def __init__(self, rows: list[tuple], rowcount: int, description: Any) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.description = description

    def fetchone(self) -> tuple | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest


class SqlServerWarehouse:
    engine = "sqlserver"

    def __init__(self, raw: Any, target: Target) -> None:
        self.raw = raw
        self.target = target
        self._in_transaction = False
        self._runner = StatementRunner(raw)
        self._broken: str | None = None  # why the connection was closed, if it was

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        self._usable()
        with self._mapped(_label(sql)):
            cur = self.raw.cursor()
            try:
                return self._runner.run(cur, lambda: _whole_result(cur, sql, params))
            finally:
                self._close_cursor(cur)

    def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.execute(sql, params).rowcount)

    def insert_rows(
        self, relation: str, sql_types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Many rows into `relation` (quoted; one value per column of `sql_types`, its T-SQL
        types) the way the driver in use takes them (`sqlserver.rows`): parameter arrays with
        Microsoft's drivers (pyodbc `fast_executemany`, mssql-python), multi-row INSERT ...
        VALUES statements with FreeTDS, whose parameter arrays crash the process."""
        if not rows:
            return
        self._usable()
        with self._mapped(_label(f"INSERT INTO {relation}")):
            mssql_rows.insert_rows(self.raw, f"INSERT INTO {relation}", sql_types, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_transaction:
            raise WarehouseError("nested warehouse transactions are not supported")
        self._usable()
        with self._mapped("BEGIN TRANSACTION"):
            self.raw.autocommit = False
        self._in_transaction = True
        try:
            try:
                yield
            except BaseException:
                self._roll_back()
                raise
            try:
                with self._mapped("COMMIT"):
                    self.raw.commit()
            except BaseException:
                self._roll_back()
                raise
        finally:
            self._in_transaction = False
            if self._broken is None and not self._runner.abandoned:
                try:
                    self.raw.autocommit = True
                except Exception as exc:
                    self._give_up(exc, "switch autocommit back on")

    def _roll_back(self) -> None:
        if self._runner.abandoned:  # the server rolls back when it cancels the statement
            return
        try:
            self.raw.rollback()
        except Exception as exc:  # the connection may be what failed
            self._give_up(exc, "roll back the failed transaction")

    def _give_up(self, exc: BaseException, action: str) -> None:
        """After a failed rollback (or autocommit switch) the connection's transaction state is
        unknown: a later statement could run outside any transaction, or inside one never
        committed. It is closed, and every later use fails naming why."""
        reason = mssql.describe(exc, self.target, action)
        self._broken = f"{reason}; the connection was closed (its transaction state is unknown)"
        self.close()

    def _usable(self) -> None:
        if self._broken is not None:
            raise WarehouseError(self._broken)

    def close(self) -> None:
        self._runner.close()

    def _close_cursor(self, cur: Any) -> None:
        if not self._runner.abandoned:  # a stopped statement may still be inside the driver
            with suppress(Exception):
                cur.close()

    @contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if not mssql.is_driver_error(exc):
                raise
            raise _warehouse_error(exc, self.target, f"run {what}") from None


def _whole_result(cur: Any, sql: str, params: Sequence[Any]) -> Result:
    """Run one statement and read everything it sends: its rows, then every further result
    (drained, so none stays pending and an error after the first result surfaces)."""
    if params:
        cur.execute(sql, list(params))
    else:
        cur.execute(sql)
    rowcount = cur.rowcount
    description = cur.description
    rows = [tuple(r) for r in cur.fetchall()] if description is not None else []
    while cur.nextset():
        if cur.description is not None:
            cur.fetchall()
    return Result(rows, rowcount, description)


def open_sqlserver(
    target: Target, *, connect: Callable[[], Any] | None = None
) -> SqlServerWarehouse:
    """An autocommitting connection to the target's warehouse database. `connect` returns an
    open DB-API connection (default: dbt-sqlserver's way); tests pass a recording double."""
    opener = connect or (lambda: mssql.connect(target))
    try:
        raw = opener()
    except Exception as exc:
        if not mssql.is_driver_error(exc):
            raise  # SqlServerConfigError (a ProfileError) and bugs: as they are
        raise _warehouse_error(exc, target, "connect to the warehouse") from None
    return SqlServerWarehouse(raw, target)


def _warehouse_error(exc: BaseException, target: Target, action: str) -> WarehouseError:
    message = mssql.describe(exc, target, action)
    if mssql.classify(exc) == "transient":
        return WarehouseBusy(message)
    return WarehouseError(message)


def _label(sql: str) -> str:
    """The statement's first words, to name it in a message (values are bound, never here)."""
    words = " ".join(sql.split())
    return words if len(words) <= 60 else words[:57] + "..."
