"""Every kind of source activity happens, lands inside the advanced window, and keeps the
source consistent."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.simulator import ACTIVITY_KINDS, ActivityRates, SimulatorError, SyncSimulator
from exigo_sync.simulator.pools import MARKETS, POOL_SIZES
from tests.simulator.helpers import BUSY, CLOCK_START, CUSTOMERS, QUIET, keys

HOURS = 6
BusyDay = tuple[SyncSimulator, dict[str, list[dict]], dict[str, int]]


@pytest.fixture(scope="module")
def busy_day(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> BusyDay:
    """The small database before and after HOURS busy simulated hours (built once; tests only
    read it)."""
    path = tmp_path_factory.mktemp("busy") / "sync.duckdb"
    shutil.copyfile(template_db, path)
    sim = SyncSimulator(path)
    before = {
        name: sim.current_rows(name) for name in ("Customers", "Orders", "OrderDetails", "Payments")
    }
    summary = sim.advance(timedelta(hours=HOURS), BUSY)
    return sim, before, summary.counts


def test_every_activity_kind_occurs(busy_day: BusyDay) -> None:
    _, _, counts = busy_day
    assert set(counts) == set(ACTIVITY_KINDS)
    assert [kind for kind, n in counts.items() if n == 0] == []


def test_deleted_payments_are_gone_from_dbo_and_recorded(busy_day: BusyDay) -> None:
    sim, _, counts = busy_day
    deleted = sim.deleted_payment_ids()
    assert len(deleted) == counts["payments_deleted"] > 0
    assert not deleted & keys(sim.current_rows("Payments"), "PaymentID")
    for p in sim.deleted_payments():
        assert CLOCK_START <= p["DeletedAt"] < CLOCK_START + timedelta(hours=HOURS)


def test_deleted_status_customers_stay_in_dbo(busy_day: BusyDay) -> None:
    """Status 0 is Exigo's soft delete: the row stays (a purge is another thing)."""
    sim, before, _ = busy_day
    status = {r["CustomerID"]: r["CustomerStatusID"] for r in sim.current_rows("Customers")}
    newly_deleted = [
        r["CustomerID"]
        for r in before["Customers"]
        if r["CustomerStatusID"] != 0 and status.get(r["CustomerID"]) == 0
    ]
    assert newly_deleted
    assert not set(newly_deleted) & sim.deleted_keys("Customers")


def test_removed_lines_are_gone_and_their_orders_were_bumped(busy_day: BusyDay) -> None:
    sim, _, _ = busy_day
    removed = sim.removed_order_lines()
    assert removed
    assert not removed & keys(sim.current_rows("OrderDetails"), "OrderID", "OrderLine")
    modified = {r["OrderID"]: r["ModifiedDate"] for r in sim.current_rows("Orders")}
    assert all(modified[order_id] >= CLOCK_START for order_id, _ in removed)


def test_any_order_whose_lines_changed_has_a_new_modified_date(busy_day: BusyDay) -> None:
    """OrderDetails has no timestamp: a line change must show on the parent order."""
    sim, before, _ = busy_day

    def lines_by_order(rows: list[dict]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for r in rows:
            out.setdefault(r["OrderID"], []).append(r)
        return out

    old, new = (
        lines_by_order(before["OrderDetails"]),
        lines_by_order(sim.current_rows("OrderDetails")),
    )
    changed = {o for o in old.keys() | new.keys() if old.get(o) != new.get(o)}
    # An order deleted with its lines has no row left to bump: the deletion is its record.
    deleted = sim.deleted_keys("Orders")
    assert changed - deleted and deleted
    modified = {r["OrderID"]: r["ModifiedDate"] for r in sim.current_rows("Orders")}
    assert all(modified[o] >= CLOCK_START for o in changed - deleted)


def test_returns_are_rma_orders_linked_to_the_shipped_original(busy_day: BusyDay) -> None:
    sim, _, counts = busy_day
    orders = {r["OrderID"]: r for r in sim.current_rows("Orders")}
    returns = [o for o in orders.values() if o["OrderTypeID"] == 8]
    assert len(returns) == counts["returns"] > 0
    for ret in returns:
        original = orders[ret["ParentOrderID"]]
        assert ret["IsRMA"] and ret["Total"] < 0
        assert original["ReturnOrderID"] == ret["OrderID"]
        assert original["OrderStatusID"] == 9


def test_status_progression_sets_shipping_fields(busy_day: BusyDay) -> None:
    sim, _, _ = busy_day
    for o in sim.current_rows("Orders"):
        if o["OrderStatusID"] == 9:
            assert o["ShippedDate"] is not None and o["TrackingNumber1"].startswith("1Z")
        else:
            assert o["ShippedDate"] is None
    paid = keys(sim.current_rows("Payments"), "OrderID")
    pending = [o["OrderID"] for o in sim.current_rows("Orders") if o["OrderStatusID"] == 1]
    assert not paid & set(pending), "a pending order has no payment yet"


def test_changes_fall_inside_the_advanced_window(busy_day: BusyDay) -> None:
    sim, before, _ = busy_day
    end = CLOCK_START + timedelta(hours=HOURS)
    assert sim.now() == end
    for name in ("Customers", "Orders", "Payments"):
        key_column = REPLICATED_TABLES[name].key[0]
        old = {r[key_column]: r for r in before[name]}
        for row in sim.current_rows(name):
            key = row[key_column]
            if old.get(key) != row:
                assert CLOCK_START <= row["ModifiedDate"] < end, (name, key)
            else:
                assert row["ModifiedDate"] < CLOCK_START


def test_order_totals_match_their_current_lines(busy_day: BusyDay) -> None:
    sim, _, _ = busy_day
    with sim.connect() as con:
        mismatches = con.execute(
            "SELECT count(*) FROM dbo.Orders o JOIN (SELECT OrderID, sum(PriceTotal) s "
            "FROM dbo.OrderDetails GROUP BY OrderID) d USING (OrderID) WHERE o.SubTotal <> d.s"
        ).fetchone()[0]
        orphans = con.execute(
            "SELECT count(*) FROM dbo.Orders WHERE OrderID NOT IN "
            "(SELECT OrderID FROM dbo.OrderDetails)"
        ).fetchone()[0]
    assert mismatches == 0 and orphans == 0


def test_enrollers_and_sponsors_are_existing_earlier_customers(busy_day: BusyDay) -> None:
    sim, _, _ = busy_day
    customers = sim.current_rows("Customers")
    ids = keys(customers, "CustomerID")
    assert len(ids) > CUSTOMERS
    for c in customers:
        if c["CustomerID"] == 1:
            continue
        assert c["EnrollerID"] in ids and c["EnrollerID"] < c["CustomerID"]
        assert c["SponsorID"] in ids and c["SponsorID"] < c["CustomerID"]


def test_base_population_is_dated_in_the_history_window(sim: SyncSimulator) -> None:
    start = CLOCK_START - timedelta(days=30)
    for c in sim.current_rows("Customers"):
        assert start <= c["CreatedDate"] <= c["ModifiedDate"] < CLOCK_START
    assert sim.now() == CLOCK_START


def test_names_places_and_contacts_look_real(sim: SyncSimulator) -> None:
    customers = sim.current_rows("Customers")
    assert len({c["FirstName"] for c in customers}) > 100
    assert all("@" in c["Email"] and len(c["Email"]) <= 50 for c in customers)
    assert all(c["Email"].isascii() for c in customers)
    us = [c for c in customers if c["MainCountry"] == "US"]
    assert us and all(len(c["MainState"]) == 2 and c["MainZip"][:5].isdigit() for c in us)
    assert all(c["MainCounty"].endswith(" County") for c in us)
    canadian = [c for c in customers if c["MainCountry"] == "CA"]
    assert canadian and all(re.fullmatch(r"[A-Z]\d[A-Z] \d[A-Z]\d", c["MainZip"]) for c in canadian)
    assert all(c["MainAddress1"] and "\n" not in c["MainAddress1"] for c in customers)
    assert all(len(c["Phone"]) <= 20 for c in customers)


def test_customers_orders_and_payments_spread_over_the_markets(busy_day: BusyDay) -> None:
    """Customers belong to the company's markets (country and currency together, the largest
    share at home); their orders ship to their country in their currency, priced from the
    market's price list; payments are in the order's currency."""
    sim, _, _ = busy_day
    markets = {m.country: m for m in MARKETS}
    customers = {c["CustomerID"]: c for c in sim.current_rows("Customers")}
    by_country: dict[str, int] = {}
    for c in customers.values():
        assert markets[c["MainCountry"]].currency == c["CurrencyCode"], c["CustomerID"]
        by_country[c["MainCountry"]] = by_country.get(c["MainCountry"], 0) + 1
    assert set(by_country) == set(markets), by_country
    assert max(by_country, key=by_country.__getitem__) == "US"
    orders = {o["OrderID"]: o for o in sim.current_rows("Orders")}
    for o in orders.values():
        customer = customers.get(o["CustomerID"])
        if customer is not None:
            assert o["CurrencyCode"] == customer["CurrencyCode"], o["OrderID"]
        assert markets[o["Country"]].currency == o["CurrencyCode"], o["OrderID"]
    assert len({o["CurrencyCode"] for o in orders.values()}) == len(MARKETS)
    for p in sim.current_rows("Payments"):
        if p["OrderID"] in orders:
            assert p["CurrencyCode"] == orders[p["OrderID"]]["CurrencyCode"], p["PaymentID"]
    with sim.connect() as con:
        catalogue = dict(con.execute("SELECT ItemID, Price FROM sim.Items").fetchall())
    for line in sim.current_rows("OrderDetails"):
        market = markets[orders[line["OrderID"]]["Country"]]
        usd = catalogue[line["ItemID"]]
        expected = (
            usd
            if market.price_factor == 1
            else round(usd * Decimal(str(market.price_factor))) - Decimal("0.05")
        )
        assert line["PriceEach"] == expected, (line["OrderID"], line["OrderLine"])


def test_a_file_made_before_the_markets_goes_on_in_its_one_market(
    template_db: Path, tmp_path: Path
) -> None:
    """A simulator file from before the markets (US pools only, no sim.Markets, every customer in
    usd) still advances, exactly as it did: every new customer, order and payment in US / usd."""
    path = tmp_path / "old.duckdb"
    shutil.copyfile(template_db, path)
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE sim.Markets")
        con.execute(f"DELETE FROM sim.People WHERE idx >= {POOL_SIZES['People']}")
        con.execute(f"DELETE FROM sim.Places WHERE idx >= {POOL_SIZES['Places']}")
        for table, country in (("Customers", "MainCountry"), ("Orders", "Country")):
            con.execute(f"UPDATE dbo.{table} SET CurrencyCode = 'usd', {country} = 'US'")
        con.execute("UPDATE dbo.Payments SET CurrencyCode = 'usd'")
    sim = SyncSimulator(path)
    summary = sim.advance(timedelta(hours=3), BUSY)
    assert summary.counts["new_customers"] > 0 and summary.counts["new_orders"] > 0
    assert {(c["MainCountry"], c["CurrencyCode"]) for c in sim.current_rows("Customers")} == {
        ("US", "usd")
    }
    assert {(o["Country"], o["CurrencyCode"]) for o in sim.current_rows("Orders")} == {
        ("US", "usd")
    }
    with sim.connect() as con:
        assert con.execute("SELECT Country, CurrencyCode FROM sim.Markets").fetchall() == [
            ("US", "usd")
        ]


def test_zero_rates_and_far_waits_generate_nothing(sim: SyncSimulator) -> None:
    summary = sim.advance(timedelta(hours=2), QUIET)
    assert sum(summary.counts.values()) == 0
    assert sim.now() == CLOCK_START + timedelta(hours=2)


def test_invalid_rates_and_durations_are_refused(sim: SyncSimulator) -> None:
    with pytest.raises(ValueError, match="negative"):
        ActivityRates(new_orders=-1)
    with pytest.raises(SimulatorError, match="backwards"):
        sim.advance(timedelta(hours=-1))


def test_create_refuses_to_overwrite_unless_asked(sim: SyncSimulator) -> None:
    with pytest.raises(SimulatorError, match="already exists"):
        SyncSimulator.create(sim.path)
    again = SyncSimulator.create(sim.path, customers=5, overwrite=True)
    assert again.row_counts()["Customers"] == 5


def test_opening_a_missing_file_fails_without_creating_it(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="no simulator database"):
        SyncSimulator(tmp_path / "missing.duckdb")
    assert not (tmp_path / "missing.duckdb").exists()
