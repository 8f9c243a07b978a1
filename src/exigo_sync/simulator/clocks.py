"""The two clocks of a sync database, modelled apart: the clock that stamps ModifiedDate (the
data's clock) and the sync server's clock (SQL Server SYSDATETIME()), which `queue.Refresh`
uses for its hidden "previous call" time and the pipeline reads as the server's "now".

The correctness contract asks the sync window to hold on the data's clock, whatever the
server's clock says: a server on UTC while Exigo stamps local time, a drifting server clock, a
daylight-saving fall-back on a local-time source. A simulator with one clock for both could not
show a pipeline getting that wrong, so one time line (the simulator's clock, `sim.Clock.Now`,
on which the activity generator works) is read through a clock model:

  model                 simulation_time  data clock        sim_clock         sim_utc_clock
                                         (ModifiedDate)    (SYSDATETIME)     (SYSUTCDATETIME)
  default               t                t                 t                 t
  offset M minutes      t                t                 t + M             t + M (UTC server)
  local time zone Z     t, in UTC        wall time of t    wall time of t    t
                                         in Z              in Z

With a zone, the generator still works in UTC (at most one change per row per sub-step, rows
picked by ModifiedDate < t0, ...) and `stamp_local` rewrites what a sub-step wrote to local wall
time at its end, as `lag.back_date` does for the replication lag. Across a fall-back the wall
clock repeats an hour, so the server clock goes back an hour and a row changed just before and
again just after gets a second version stamped earlier than the first: what a local-time source
does. That is only unambiguous for zones west of UTC (local time always behind UTC): a stamp
converted to local time is then always older than the sub-step that wrote it, so the generator
can never take it for a change of the current or the next sub-step. Other zones are refused.

Times the simulator keeps for tests: a physical deletion's DeletedAt is on the data clock (it is
a back-office event on the changes' time line: it comes after the deleted row's last
ModifiedDate, and a removed order line's DeletedAt is its order's new ModifiedDate); RestoredAt
(`restore_deleted`) and EmptiedAt (`empty_table`) are operator actions, on the server clock,
which is what an operator sees. With a local time zone the two are the same wall clock.

The model is stored as sim.Settings rows (`server_clock_offset_minutes`, `local_time_zone`): it
survives reopening, and a file made before the rows existed reads as the default model.
Conversions use DuckDB's ICU extension (built into the duckdb wheel; no download), so Python and
SQL never disagree on a zone's rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator import deletions
from exigo_sync.simulator.db import execute, quote, update_rows

OFFSET_SETTING = "server_clock_offset_minutes"
ZONE_SETTING = "local_time_zone"

# A server clock set a year wrong is already absurd; beyond that an offset is a typo.
MAX_OFFSET_MINUTES = 366 * 24 * 60.0

# Other timestamps the generator sets to the change's time together with ModifiedDate: a
# rewrite of a change's ModifiedDate (replication lag, local time) moves them with it.
EVENT_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "Customers": ("CreatedDate", "EmailSubscribeDate", "SMSSubscribeDate"),
    "CustomerAccounts": (),
    "CustomerSites": (),
    "Orders": ("OrderDate", "CreatedDate", "ShippedDate"),
    "Payments": ("PaymentDate",),
}

TIMED_TABLES = tuple(n for n, t in REPLICATED_TABLES.items() if t.version_time_column is not None)
if set(TIMED_TABLES) != set(EVENT_TIME_COLUMNS):
    raise RuntimeError(f"the clock model does not know every timed table: {TIMED_TABLES}")

# How far west of its local time a UTC instant can be (UTC-12 is the westernmost zone): a
# superset bound for "which local stamps could stand for a UTC time after t".
_WESTERNMOST = timedelta(hours=12)


class ClockModelError(ValueError):
    """A clock model the simulator cannot honour (bad offset, unknown or eastern zone, both)."""


@dataclass(frozen=True)
class ClockModel:
    """How the data's clock and the server's clock read the simulator's clock (see the module
    docstring). The default model reads every clock as the simulator's clock."""

    server_clock_offset_minutes: float = 0.0
    local_time_zone: str | None = None

    @property
    def server_clock_offset(self) -> timedelta:
        return timedelta(minutes=self.server_clock_offset_minutes)

    def describe(self) -> str:
        if self.local_time_zone is not None:
            return (
                f"local-time source in {self.local_time_zone}: the simulator's clock runs in UTC, "
                "the server clock and ModifiedDate show local wall time"
            )
        if self.server_clock_offset_minutes:
            return (
                f"server clock = simulator clock {self.server_clock_offset_minutes:+g} min "
                "(a UTC server); ModifiedDate on the simulator clock"
            )
        return "one clock: server clock = ModifiedDate's clock = simulator clock"


def checked(model: ClockModel) -> ClockModel:
    """`model` if the simulator can honour it, else ClockModelError saying why."""
    offset = model.server_clock_offset_minutes
    if isinstance(offset, bool) or not isinstance(offset, int | float):
        raise ClockModelError(f"server_clock_offset_minutes must be a number, got {offset!r}")
    if not math.isfinite(offset) or abs(offset) > MAX_OFFSET_MINUTES:
        raise ClockModelError(
            f"server_clock_offset_minutes must be finite and at most {MAX_OFFSET_MINUTES:g} "
            f"either way (a year), got {offset}"
        )
    zone = model.local_time_zone
    if zone is None:
        return ClockModel(float(offset), None)
    if not isinstance(zone, str) or not zone.strip():
        raise ClockModelError(f"local_time_zone must be an IANA zone name, got {zone!r}")
    zone = zone.strip()
    if offset:
        raise ClockModelError(
            "a server clock offset and a local time zone cannot be combined: with a zone the "
            "server clock already shows the zone's wall time (set the offset to 0, or the zone "
            "to none)"
        )
    _check_zone(zone)
    return ClockModel(0.0, zone)


def _check_zone(zone: str) -> None:
    con = duckdb.connect()
    try:
        try:
            row = con.execute(
                # Monthly samples over three centuries catch every standard and summer offset.
                "SELECT max(epoch_us(timezone($zone, timezone('UTC', t))) - epoch_us(t)) "
                "FROM generate_series(TIMESTAMP '1900-01-01', TIMESTAMP '2200-01-01', "
                "INTERVAL 1 MONTH) s(t)",
                {"zone": zone},
            ).fetchone()
        except duckdb.Error:
            raise ClockModelError(
                f"unknown time zone {zone!r}: give an IANA name such as America/Chicago"
            ) from None
    finally:
        con.close()
    largest = timedelta(microseconds=row[0] if row else 0)
    if largest >= timedelta(0):
        raise ClockModelError(
            f"time zone {zone!r} is not west of UTC (its UTC offset reaches {_hours(largest)}): "
            "the simulator models local-time sources west of UTC only, where a stamp converted "
            "to local time is always older than the UTC time that made it, so the activity "
            "generator never takes an old change for a new one (America/Chicago and "
            "America/New_York qualify; for a UTC source leave the zone unset)"
        )


def _hours(delta: timedelta) -> str:
    minutes = int(delta / timedelta(minutes=1))
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- the model in sim.Settings -----------------------------------------------------------------


def read_model(con: duckdb.DuckDBPyConnection) -> ClockModel:
    rows = dict(
        con.execute(
            "SELECT Name, Value FROM sim.Settings WHERE Name IN (?, ?)",
            [OFFSET_SETTING, ZONE_SETTING],
        ).fetchall()
    )
    offset = float(rows.get(OFFSET_SETTING) or 0.0)
    zone = rows.get(ZONE_SETTING) or None
    return ClockModel(offset, zone)


def write_model(con: duckdb.DuckDBPyConnection, model: ClockModel) -> None:
    """Store a `checked` model (no zone is stored as an empty value)."""
    for name, value in (
        (OFFSET_SETTING, repr(float(model.server_clock_offset_minutes))),
        (ZONE_SETTING, model.local_time_zone or ""),
    ):
        con.execute(
            "INSERT INTO sim.Settings VALUES (?, ?) ON CONFLICT (Name) DO UPDATE SET Value = ?",
            [name, value, value],
        )


# --- readings ------------------------------------------------------------------------------------


def simulation_time(con: duckdb.DuckDBPyConnection) -> datetime:
    """The simulator's own clock: the activity generator's time line (UTC with a local time
    zone). `advance` moves it; no reader outside the simulator should see it as "now"."""
    row = con.execute("SELECT Now FROM sim.Clock").fetchone()
    if row is None:
        raise RuntimeError("simulator clock is missing (sim.Clock is empty)")
    return row[0]


def local_wall_time(con: duckdb.DuckDBPyConnection, zone: str, utc: datetime) -> datetime:
    row = con.execute(f"SELECT {to_local_sql('$t')}", {"zone": zone, "t": utc}).fetchone()
    if row is None:
        raise RuntimeError("no local time")
    return row[0]


def data_clock(con: duckdb.DuckDBPyConnection) -> datetime:
    """What the clock that stamps ModifiedDate reads now."""
    model = read_model(con)
    now = simulation_time(con)
    if model.local_time_zone is not None:
        return local_wall_time(con, model.local_time_zone, now)
    return now


def sim_clock(con: duckdb.DuckDBPyConnection) -> datetime:
    """The sync server's clock, SYSDATETIME(): queue.Refresh's "previous call" time and
    started/finished times, and the pipeline's source-clock "now"."""
    model = read_model(con)
    now = simulation_time(con)
    if model.local_time_zone is not None:
        return local_wall_time(con, model.local_time_zone, now)
    return now + model.server_clock_offset


def sim_utc_clock(con: duckdb.DuckDBPyConnection) -> datetime:
    """SYSUTCDATETIME(): the simulator's UTC time with a local time zone; with an offset the
    server is taken to run on UTC (SYSUTCDATETIME = SYSDATETIME); else `sim_clock`."""
    model = read_model(con)
    now = simulation_time(con)
    if model.local_time_zone is not None:
        return now
    return now + model.server_clock_offset


# --- SQL ---------------------------------------------------------------------------------------
# The expressions read the zone from the statement's $zone parameter.


def to_local_sql(utc_sql: str) -> str:
    """A naive UTC time as the naive wall time in $zone."""
    return f"timezone($zone, timezone('UTC', {utc_sql}))"


def to_utc_sql(local_sql: str) -> str:
    """A naive wall time in $zone as naive UTC (a repeated wall time: either instant)."""
    return f"timezone('UTC', timezone($zone, {local_sql}))"


def latest_utc_sql(local_sql: str) -> str:
    """A naive wall time in $zone as the latest UTC instant that shows it: in a fall-back's
    repeated hour, the second one (an upper bound, whichever one ICU picks)."""
    utc = to_utc_sql(local_sql)
    return (
        f"CASE WHEN {to_local_sql(f'{utc} + INTERVAL 1 HOUR')} = {local_sql} "
        f"THEN {utc} + INTERVAL 1 HOUR ELSE {utc} END"
    )


def recent_floor(p: Mapping[str, Any]) -> datetime:
    """The earliest stamp a change of the sub-step can carry: t0, less the replication lag."""
    return p["t0"] - timedelta(microseconds=int(p.get("lag_us", 0)))


def local_stamp_floor(p: Mapping[str, Any]) -> datetime:
    """The earliest local stamp that can stand for a UTC time at or after `recent_floor`."""
    return recent_floor(p) - _WESTERNMOST


# --- local time --------------------------------------------------------------------------------


def localise_population(con: duckdb.DuckDBPyConnection, zone: str) -> None:
    """The base population, generated in UTC, stamped in local wall time."""
    for name in TIMED_TABLES:
        cols = ("ModifiedDate", *EVENT_TIME_COLUMNS[name])
        sets = ", ".join(f"{quote(c)} = {to_local_sql(quote(c))}" for c in cols)
        execute(con, f"UPDATE dbo.{quote(name)} SET {sets}", {"zone": zone})


def _prev(name: str) -> str:
    return f"_tz_prev_{name}"


def _prev_deleted(name: str) -> str:
    return f"_tz_prev_deleted_{name}"


def remember_recent(con: duckdb.DuckDBPyConnection, p: Mapping[str, Any]) -> None:
    """Before a sub-step with a local time zone: the rows and archived deletions stamped at or
    after the earliest time the sub-step can stamp (`recent_floor`). Their stamps are not the
    sub-step's: a future ModifiedDate an operator set, or with a replication lag longer than
    the zone's offset an older local stamp. `stamp_local` leaves them alone."""
    for name in TIMED_TABLES:
        keys = ", ".join(quote(k) for k in REPLICATED_TABLES[name].key)
        execute(
            con,
            f"CREATE OR REPLACE TEMP TABLE {_prev(name)} AS SELECT {keys}, ModifiedDate "
            f"FROM dbo.{quote(name)} WHERE ModifiedDate >= $floor",
            {"floor": recent_floor(p)},
        )
    for name, table in REPLICATED_TABLES.items():
        keys = ", ".join(quote(k) for k in table.key)
        execute(
            con,
            f"CREATE OR REPLACE TEMP TABLE {_prev_deleted(name)} AS SELECT {keys}, DeletedAt, "
            f"Cause FROM {deletions.archive(name)} WHERE DeletedAt >= $floor",
            {"floor": recent_floor(p)},
        )


def stamp_local(con: duckdb.DuckDBPyConnection, p: Mapping[str, Any]) -> None:
    """After a sub-step (and its replication lag): every stamp it wrote, UTC so far, becomes
    the local wall time in $zone: ModifiedDate with the timestamps set with it, and the
    DeletedAt of its physical deletions."""
    params = {**p, "floor": recent_floor(p)}
    for name in TIMED_TABLES:
        key = REPLICATED_TABLES[name].key
        on = " AND ".join(f"d.{quote(k)} = prev.{quote(k)}" for k in key)
        keys = ", ".join(f"d.{quote(k)}" for k in key)
        execute(
            con,
            f"""
            CREATE OR REPLACE TEMP TABLE _tz_new AS
            SELECT {keys}, d.ModifiedDate AS UtcStamp,
                {to_local_sql("d.ModifiedDate")} AS LocalStamp
            FROM dbo.{quote(name)} d LEFT JOIN {_prev(name)} prev ON {on}
            WHERE d.ModifiedDate >= $floor
              AND (prev.ModifiedDate IS NULL OR d.ModifiedDate <> prev.ModifiedDate)
            """,
            params,
        )
        sets = {
            col: f"CASE WHEN r.{quote(col)} = x.UtcStamp THEN x.LocalStamp ELSE r.{quote(col)} END"
            for col in EVENT_TIME_COLUMNS[name]
        }
        sets["ModifiedDate"] = "x.LocalStamp"
        match = " AND ".join(f"r.{quote(k)} = x.{quote(k)}" for k in key)
        update_rows(con, name, "r", sets, f"FROM _tz_new x WHERE {match}", p)
    for name, table in REPLICATED_TABLES.items():
        match = " AND ".join(f"prev.{quote(k)} = a.{quote(k)}" for k in table.key)
        execute(
            con,
            f"UPDATE {deletions.archive(name)} AS a SET DeletedAt = {to_local_sql('a.DeletedAt')} "
            f"WHERE a.DeletedAt >= $floor AND NOT EXISTS (SELECT 1 FROM {_prev_deleted(name)} "
            f"prev WHERE {match} AND prev.DeletedAt = a.DeletedAt AND prev.Cause = a.Cause)",
            params,
        )
