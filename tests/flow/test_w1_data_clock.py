"""W1 on the data's clock: the sync server's clock is not the clock that stamps ModifiedDate.

Real flow runs against simulators whose clocks are apart (simulator.clocks): a server running
two hours ahead of the data (a UTC server while Exigo stamps local time), one running behind,
and a local-time source across the 2026-11-01 daylight-saving fall-back (America/Chicago, where
Exigo is). Over many batches with activity in between, T1 holds after a reconciliation, and
every batch records what it measured.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from exigo_sync.check import run_checks
from exigo_sync.settings import Settings
from exigo_sync.simulator import ActivityRates, SyncSimulator
from exigo_sync.status import render_status
from tests.flow.helpers import SyncEnv, assert_current_equals_source, make_env

# Enough activity that every 20-minute step changes rows of every entity.
LIVELY = ActivityRates().scaled(4.0)


def _env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, start: datetime, **clock: object
) -> SyncEnv:
    source = tmp_path / "template.duckdb"
    SyncSimulator.create(source, seed=5, customers=200, clock_start=start, **clock)  # type: ignore[arg-type]
    return make_env(tmp_path / "env", source, monkeypatch)


def _cycles(env: SyncEnv, steps: int, every: timedelta) -> None:
    for _ in range(steps):
        env.sim.advance(every, LIVELY)
        env.run_ok()


@pytest.mark.parametrize("offset_minutes", [120, pytest.param(-120, marks=pytest.mark.slow)])
def test_w1_server_clock_apart_from_the_data_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offset_minutes: int
) -> None:
    """+120: the server's clock two hours ahead of the clock stamping ModifiedDate; a window
    resuming from the server-clock refresh time skipped every change of the last two hours.
    -120: behind (windows start early: re-delivered rows, no loss either way)."""
    env = _env(
        tmp_path,
        monkeypatch,
        start=datetime(2026, 1, 5),
        server_clock_offset_minutes=offset_minutes,
    )
    env.run_ok()
    _cycles(env, 3, timedelta(minutes=40))
    env.run_ok(reconcile=True)
    assert assert_current_equals_source(env) > 0
    merged = [b for b in env.batches() if b["status"] == "merged"]
    # Every batch measured the data's clock against the server's: the latest stamp its snapshot
    # held is about the offset away from the server clock at the refresh (activity is lively).
    leads = [b["data_high_water"] - b["refresh_started_at"] for b in merged[1:]]
    offset = timedelta(minutes=offset_minutes)
    assert all(abs(lead + offset) < timedelta(minutes=30) for lead in leads), leads
    # The server runs on UTC here (the simulator's offset model): it reports no zone offset.
    assert {b["utc_offset_seconds"] for b in merged} == {0}
    # The next window resumes from the earlier clock.
    for b in merged:
        assert b["resume_at"] == min(b["refresh_started_at"], b["data_high_water"])
    # `status` and `check` show what the latest batch measured.
    relation = "before" if offset_minutes > 0 else "after"
    console = Console(record=True, width=300)
    render_status(console, target=None, last=3)
    shown = console.export_text()
    assert "clocks (W1): the sync server's clock is UTC+00:00" in shown, shown
    assert f"{relation} its refresh on the server's clock" in shown, shown
    topology = Settings.load().topology_for()
    (data_clock,) = [
        r
        for r in run_checks(topology.warehouse, topology.source, source_file=topology.source_path())
        if r.name == "data clock"
    ]
    assert f"{relation} its refresh" in data_clock.detail


@pytest.mark.slow  # in `make test-slow` (a day of batches across the fall-back)
def test_w1_local_time_source_across_a_daylight_saving_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync server and Exigo on Chicago time: at 07:00Z on 2026-11-01 the wall clock goes
    from 01:59 CDT back to 01:00 CST, so the server clock steps back an hour and the changes of
    the repeated hour are stamped earlier than those just before it (some versions earlier
    than the version they replace). Batches every 20 minutes from 05:00Z to 09:00Z."""
    env = _env(
        tmp_path, monkeypatch, start=datetime(2026, 11, 1, 5, 0),
        local_time_zone="America/Chicago",
    )  # fmt: skip
    env.run_ok()
    _cycles(env, 12, timedelta(minutes=20))
    env.run_ok(reconcile=True)
    assert assert_current_equals_source(env) > 0
    merged = [b for b in env.batches() if b["status"] == "merged"]
    offsets = [b["utc_offset_seconds"] for b in merged]
    assert offsets[0] == -5 * 3600 and offsets[-1] == -6 * 3600, offsets  # CDT, then CST
    # The first batch after the fall-back saw the server's clock go back an hour, and its
    # window started that much earlier than the overlap alone would have.
    after = next(i for i, o in enumerate(offsets) if o == -6 * 3600)
    assert merged[after]["requested_start"] <= merged[after - 1]["resume_at"] - timedelta(
        minutes=70
    )
