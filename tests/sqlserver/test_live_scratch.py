"""The live tests' throw-away databases (tests/sqlserver/scratch.py) on a live server, when one
is configured (skipped otherwise): a setup that fails reports its own error and leaves no
database behind; a database that cannot be dropped is warned about and never hides the test's
own outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sqlserver import scratch
from tests.sqlserver.batches import run_batch
from tests.sqlserver.targets import admin_login, live_skip_reason

pytestmark = pytest.mark.sqlserver


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names scratch_databases gives out in this test (dropped again at the end)."""
    if reason := live_skip_reason():
        pytest.skip(reason)
    if admin_login() is None:
        pytest.skip(scratch.ADMIN_SKIP_REASON)
    given: list[str] = []
    unique = scratch.unique

    def recorded(prefix: str) -> str:
        given.append(unique(prefix))
        return given[-1]

    monkeypatch.setattr(scratch, "unique", recorded)
    yield given
    monkeypatch.undo()
    for name in given:
        scratch.drop_database(name)


def exists(name: str) -> bool:
    con = scratch.admin_connect()
    try:
        return run_batch(con, "SELECT DB_ID(?)", name)[0][0] is not None
    finally:
        con.close()


def test_a_failed_setup_reports_its_own_error_and_drops_what_it_made(
    names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_scripts(name: str, babelfish: bool) -> list[str]:
        return [f"CREATE DATABASE [{name}]\nGO\nRAISERROR('planted setup failure', 16, 1)\nGO\n"]

    monkeypatch.setattr(scratch, "sync_database_sql", failing_scripts)
    with (
        pytest.raises(Exception, match="planted setup failure"),
        scratch.scratch_databases(sync=("exigo_sync_setup_fails",)),
    ):
        pytest.fail("the body must not run after a failed setup")
    (name,) = names
    assert not exists(name)


def test_a_database_that_cannot_be_dropped_is_warned_about_never_masking(
    names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = scratch.run_batch

    def no_drop(con: object, sql: str, *params: object) -> list[tuple]:
        if sql.startswith("DROP DATABASE"):
            raise RuntimeError("planted: cannot drop")
        return real(con, sql, *params)

    with (
        pytest.warns(UserWarning, match=r"could not drop the test database .*planted"),
        pytest.raises(ZeroDivisionError),
        scratch.scratch_databases(plain=("exigo_sync_drop_fails",)),
    ):
        monkeypatch.setattr(scratch, "run_batch", no_drop)
        _ = 1 / 0  # the test's own failure: it is what surfaces
    (name,) = names
    assert exists(name)  # left behind, as warned; the fixture drops it for real
