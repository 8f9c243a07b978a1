"""The recording DB-API double (tests/sqlserver/doubles.py) is as strict as pyodbc and the ODBC
drivers: what they refuse, it refuses, with their words. Each rule is checked against what the
live engine answered (pyodbc 5 + FreeTDS 1.3), and the three stale calls the live suite found
(issue #19: INSERT_STATS with 7 parameters for 11 markers, INSERT_LOCK with 7 for 8, the loader
leaving LAST_LOAD unread) fail here as they failed there."""

from __future__ import annotations

from datetime import datetime

import pyodbc
import pytest

from deploy.sqlserver import load_simulator as loader
from exigo_sync.warehouse import ledger_sql as q
from exigo_sync.warehouse.errors import WarehouseError
from exigo_sync.warehouse.sqlserver_engine import open_sqlserver
from tests.sqlserver.doubles import (
    FREETDS,
    MSODBC18,
    DriverCrash,
    RecordingDriver,
    parameter_markers,
)
from tests.sqlserver.targets import sqlserver_target

NOW = datetime(2026, 1, 5, 10, 0, 0)


def rows(sql: str, params: tuple) -> list:
    return [[(1,), (2,)]] if sql.lstrip().upper().startswith("SELECT") else [1]


@pytest.mark.parametrize(
    ("sql", "markers"),
    [
        ("SELECT ?", 1),
        ("INSERT INTO t VALUES (?, ?), (?, ?)", 4),
        ("SELECT '?', N'it''s ?', ?", 1),
        ('SELECT [a?b], "c?", ? -- a ? here\nFROM t WHERE x = ?', 2),
        ("SELECT /* ? /* nested ? */ still ? */ ?", 1),
        ("SELECT [x]]?] FROM t WHERE a = ?", 1),
        (q.INSERT_STATS, 11),
        (q.INSERT_LOCK, 8),
        (q.TAKE_OVER_LOCK, 9),
    ],
)
def test_markers_are_counted_as_the_driver_counts_them(sql: str, markers: int) -> None:
    assert parameter_markers(sql) == markers


@pytest.mark.parametrize("driver", [MSODBC18, FREETDS])
def test_a_parameter_count_that_differs_from_the_markers_is_refused(driver: str) -> None:
    """pyodbc's own check (its words, seen live) for too few or too many; markers sent without
    any parameter fail in the driver."""
    cur = RecordingDriver(rows, driver=driver).open().cursor()
    with pytest.raises(pyodbc.ProgrammingError, match="2 parameter markers, but 1 parameters"):
        cur.execute("SELECT ?, ?", 1)
    with pytest.raises(pyodbc.ProgrammingError, match="1 parameter markers, but 2 parameters"):
        cur.execute("SELECT ?", [1, 2])
    with pytest.raises(pyodbc.Error):
        cur.execute("SELECT ?")
    with pytest.raises(pyodbc.ProgrammingError, match="2 parameter markers, but 1"):
        cur.executemany("INSERT INTO t VALUES (?, ?)", [(1, 2), (3,)])
    assert cur.execute("SELECT '?', ?", 1).fetchall() == [(1,), (2,)]


def test_the_stale_ledger_calls_of_the_live_suite_fail_here() -> None:
    """The calls the live suite made (issue #19), through the engine as the tests made them:
    INSERT_STATS with 7 parameters for 11 markers, INSERT_LOCK with 7 for 8, TAKE_OVER_LOCK with
    8 for 9. Each fails as the driver failed it; with every parameter, each runs."""
    con = open_sqlserver(sqlserver_target(), connect=RecordingDriver(rows).open)
    stale = [
        (q.INSERT_STATS, [4, "orders", 1, 2, 3, 4, 5], 11),
        (q.INSERT_LOCK, ["L", "t", None, "h", 1, NOW, NOW], 8),
        (q.TAKE_OVER_LOCK, ["t2", "r", "h", 1, NOW, NOW, "L", "t"], 9),
    ]
    for sql, params, markers in stale:
        with pytest.raises(WarehouseError, match=f"{markers} parameter markers, but {len(params)}"):
            con.execute(sql, params)
    con.execute(q.INSERT_STATS, [4, "orders", 1, 2, 3, 4, 5, 6, 7, 8, 9])
    con.execute(q.INSERT_LOCK, ["L", "t", None, "h", 1, "marker", NOW, NOW])
    con.execute(q.TAKE_OVER_LOCK, ["t2", "r", "h", 1, "marker", NOW, NOW, "L", "t"])


@pytest.mark.parametrize(
    ("driver", "error", "words"),
    [
        (MSODBC18, pyodbc.Error, "Connection is busy with results for another command"),
        (FREETDS, pyodbc.ProgrammingError, r"\[24000\].*Invalid cursor state"),
    ],
)
def test_no_mars_a_statement_while_another_cursors_results_are_unread(
    driver: str, error: type, words: str
) -> None:
    """The loader's incremental path as it was (issue #19): LAST_LOAD's one row read with
    fetchone(), its end not reached, then a statement on another cursor. What ends a cursor's
    results (seen live on FreeTDS): a fetch past the last row (fetchall, a short fetchmany, a
    fetchone returning None), nextset() past the last result, close(), re-executing the same
    cursor, or dropping it; switching autocommit needs them ended too."""
    con = RecordingDriver(rows, driver=driver).open()
    last = con.cursor()
    last.execute(loader.LAST_LOAD).fetchone()
    with pytest.raises(error, match=words):
        con.cursor().execute(loader.delete_by_key_sql("Orders", ["OrderID"]), 1)
    with pytest.raises(pyodbc.Error):
        con.autocommit = False
    assert last.fetchone() == (2,) and last.fetchone() is None  # now past its end
    con.cursor().execute("SELECT 1").fetchall()

    for end in (
        lambda c: c.fetchall(),
        lambda c: c.fetchmany(3),
        lambda c: c.close(),
        lambda c: c.execute("DELETE FROM t"),
    ):
        cur = con.cursor()
        cur.execute("SELECT 1")
        end(cur)
        con.cursor().execute("SELECT 2").fetchall()

    exact = con.cursor()
    exact.execute("SELECT 1").fetchmany(2)  # both rows, the end not yet seen
    with pytest.raises(error):
        con.cursor().execute("SELECT 2")
    del exact  # pyodbc frees a cursor's statement with the cursor
    con.cursor().execute("SELECT 2").fetchall()

    two = RecordingDriver(lambda sql, params: [3, 4], driver=driver).open()
    batch = two.cursor()
    batch.execute("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)")
    with pytest.raises(error):  # the second row count is still pending
        two.cursor().execute("SELECT 1")
    assert batch.nextset() and not batch.nextset()
    two.autocommit = False


def test_fast_executemany_crashes_only_with_freetds() -> None:
    """FreeTDS < 1.5.15 dies in SQLExecute on pyodbc's parameter arrays (pyodbc#459): the double
    raises DriverCrash, a BaseException no `except Exception` swallows. Microsoft's driver takes
    them, and the double records that they were used; plain executemany works with both."""
    assert not issubclass(DriverCrash, Exception)
    sql = "INSERT INTO t VALUES (?, ?)"
    for driver in (MSODBC18, FREETDS):
        d = RecordingDriver(rows, driver=driver)
        cur = d.open().cursor()
        cur.executemany(sql, [(1, "a"), (2, "b")])
        cur.fast_executemany = True
        if driver == FREETDS:
            with pytest.raises(DriverCrash, match="pyodbc#459"):
                cur.executemany(sql, [(1, "a"), (2, "b")])
        else:
            cur.executemany(sql, [(1, "a"), (2, "b")])
        assert [c.fast_executemany for c in d.log.calls] == [False, True][: len(d.log.calls)]
        assert d.log.calls[0].rows == [(1, "a"), (2, "b")]


def test_the_driver_says_which_it_is() -> None:
    """getinfo(SQL_DRIVER_NAME) answers the driver library's name, as pyodbc does, and a
    connection made through the module seam behaves like the DRIVER= of its string."""
    assert "msodbcsql" in RecordingDriver().open().getinfo(pyodbc.SQL_DRIVER_NAME)
    freetds = RecordingDriver().connect("DRIVER={FreeTDS};SERVER=x")
    assert freetds.getinfo(pyodbc.SQL_DRIVER_NAME) == "libtdsodbc.so"
    assert freetds.driver == FREETDS
