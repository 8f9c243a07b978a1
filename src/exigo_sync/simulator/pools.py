"""Value pools built once with Faker (seeded) into sim.* tables.

Generation then picks from them set-based by hash, so realistic names and places cost nothing
per row however many rows are generated.

Customers are spread over the markets an Exigo company sells in (`MARKETS`, table sim.Markets):
each customer belongs to one, by a hashed draw weighted by the market's share, and takes its
name and address from that market's slice of sim.People and sim.Places (made with the market's
Faker locale), its currency from the market; its orders ship to its country and are priced in
its currency (the market's price list: the catalogue's USD prices times a factor).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import duckdb
from faker import Faker

# Pool sizes of the first market (US); every other market has MARKET_POOL_SIZES.
POOL_SIZES = {"People": 2000, "Places": 1000, "Companies": 400, "Domains": 25, "Banks": 60}
MARKET_POOL_SIZES = {"People": 400, "Places": 200}


@dataclass(frozen=True)
class Market:
    country: str  # ISO 3166 alpha-2, as Exigo stores a country
    currency: str  # Exigo's currency code (lower case, as Exigo's own "usd")
    share: float  # of the customers
    locale: str  # Faker's, for names and places
    price_factor: float  # price list against the USD catalogue
    shipping: float  # flat shipping fee, in the currency


# Where a US-based direct-selling company typically sells: most customers at home, the rest in
# its other markets. The shares add up to 1.
MARKETS: tuple[Market, ...] = (
    Market("US", "usd", 0.55, "en_US", 1.0, 9.95),
    Market("CA", "cad", 0.12, "en_CA", 1.35, 12.95),
    Market("MX", "mxn", 0.10, "es_MX", 17.0, 169.0),
    Market("GB", "gbp", 0.09, "en_GB", 0.8, 7.95),
    Market("AU", "aud", 0.08, "en_AU", 1.5, 14.95),
    Market("DE", "eur", 0.06, "de_DE", 0.92, 8.95),
)

# A small product catalogue (item code, description, price, business volume, weight in lb).
# Faker has no product provider, and a wellness-products MLM catalogue reads more plausibly
# than random words.
_ITEMS: tuple[tuple[str, str, float, float, float], ...] = (
    ("VIT-C500", "Vitamin C 500 mg, 90 tablets", 19.95, 15.0, 0.4),
    ("VIT-D3K2", "Vitamin D3 + K2 softgels, 60 count", 24.95, 20.0, 0.3),
    ("OMEGA-3", "Omega-3 Fish Oil, 120 softgels", 34.95, 28.0, 0.6),
    ("PROB-30", "Daily Probiotic 30 billion CFU", 39.95, 32.0, 0.3),
    ("PROT-VAN", "Whey Protein Shake, Vanilla, 30 servings", 54.95, 45.0, 2.4),
    ("PROT-CHO", "Whey Protein Shake, Chocolate, 30 servings", 54.95, 45.0, 2.4),
    ("PLNT-PRO", "Plant Protein, Unflavored, 20 servings", 49.95, 40.0, 1.9),
    ("GRN-SUPR", "Super Greens Powder, 30 servings", 44.95, 36.0, 0.9),
    ("COLL-PEP", "Collagen Peptides, 40 servings", 42.95, 34.0, 1.3),
    ("ENR-CITR", "Energy Drink Mix, Citrus, 20 sticks", 29.95, 24.0, 0.5),
    ("ENR-BERR", "Energy Drink Mix, Mixed Berry, 20 sticks", 29.95, 24.0, 0.5),
    ("SLEEP-MG", "Magnesium Sleep Support, 60 capsules", 27.95, 22.0, 0.3),
    ("EO-LAV15", "Lavender Essential Oil, 15 ml", 21.95, 17.0, 0.2),
    ("EO-PEP15", "Peppermint Essential Oil, 15 ml", 19.95, 16.0, 0.2),
    ("EO-TEA15", "Tea Tree Essential Oil, 15 ml", 18.95, 15.0, 0.2),
    ("EO-DIFF", "Ultrasonic Oil Diffuser", 59.95, 40.0, 1.5),
    ("SKN-SER", "Hydrating Face Serum, 30 ml", 64.95, 50.0, 0.3),
    ("SKN-CRM", "Night Repair Cream, 50 ml", 69.95, 55.0, 0.4),
    ("SKN-CLN", "Gentle Foaming Cleanser, 150 ml", 29.95, 23.0, 0.5),
    ("SKN-SPF", "Daily Moisturizer SPF 30, 50 ml", 39.95, 31.0, 0.4),
    ("HAIR-SHM", "Argan Oil Shampoo, 300 ml", 24.95, 19.0, 0.8),
    ("HAIR-CND", "Argan Oil Conditioner, 300 ml", 24.95, 19.0, 0.8),
    ("TEA-DTX", "Herbal Detox Tea, 30 bags", 17.95, 14.0, 0.2),
    ("COF-MUSH", "Mushroom Coffee Blend, 30 servings", 44.95, 36.0, 0.9),
    ("BAR-PB12", "Protein Bars, Peanut Butter, box of 12", 32.95, 26.0, 1.6),
    ("KIT-STRT", "Wellness Starter Kit", 199.95, 160.0, 5.5),
    ("KIT-SKIN", "Skin Care Collection", 179.95, 145.0, 1.8),
    ("PACK-BIZ", "Business Builder Pack", 299.95, 250.0, 7.5),
    ("MEMB-ANN", "Annual Membership", 39.95, 0.0, 0.0),
    ("SHKR-BTL", "Shaker Bottle, 24 oz", 9.95, 0.0, 0.4),
)


_BANK_KINDS = ("National Bank", "Savings Bank", "Credit Union", "Bank & Trust")


def _one_line(text: str) -> str:
    return ", ".join(part.strip() for part in text.splitlines() if part.strip())


def _region(fake: Faker, country: str) -> str:
    """The state / province / county column as Exigo holds it in that country."""
    if country in ("US", "AU", "MX"):
        return str(fake.state_abbr())
    if country == "CA":
        return str(fake.province_abbr())
    if country == "GB":
        return str(fake.county())
    return str(fake.state())


def _postcode(fake: Faker, country: str) -> str:
    """A postcode as the country writes it (Faker's en_CA drops the space now and then, its
    es_MX adds a ZIP+4-like suffix Mexican codes do not have)."""
    code = str(fake.postcode())
    if country == "CA":
        code = code.replace(" ", "")
        return f"{code[:3]} {code[3:]}"
    if country == "MX":
        return code[:5]
    return code


def _market_values(
    market: Market, seed: int, people_n: int, places_n: int
) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, ...]]]:
    """People (first, middle, last, gender) and places (street, secondary, city, state, zip,
    county) of one market, from its own Faker locale seeded with `seed`."""
    fake = Faker(market.locale)
    fake.seed_instance(seed)
    people = []
    for _ in range(people_n):
        if fake.random.random() < 0.5:
            first, middle, gender = fake.first_name_female(), fake.first_name_female(), "F"
        else:
            first, middle, gender = fake.first_name_male(), fake.first_name_male(), "M"
        people.append((first, middle, fake.last_name(), gender))
    places = []
    for _ in range(places_n):
        street = _one_line(fake.street_address())
        secondary = ""
        if fake.random.random() < 0.25 and hasattr(fake, "secondary_address"):
            secondary = _one_line(fake.secondary_address())
        city, state = fake.city(), _region(fake, market.country)
        if market.country == "US":
            # en_US Faker has no county provider; "<surname> County" is the commonest US form.
            postcode, county = fake.zipcode_in_state(state), f"{fake.last_name()} County"
        else:
            postcode, county = _postcode(fake, market.country), ""
        places.append((street[:100], secondary[:100], city[:50], state[:50], postcode[:50], county))
    return people, places


@lru_cache(maxsize=4)
def _faker_values(seed: int) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Every pool's values for `seed`, drawn in a fixed order from seeded Fakers (one per
    market's locale). Cached: Faker takes about a second for these, and tests create many
    databases with the same seed."""
    people: list[tuple[str, str, str, str]] = []
    places: list[tuple[str, ...]] = []
    for i, market in enumerate(MARKETS):
        sizes = POOL_SIZES if i == 0 else MARKET_POOL_SIZES
        market_people, market_places = _market_values(
            market, seed + i, sizes["People"], sizes["Places"]
        )
        people += market_people
        places += [(*place, market.country) for place in market_places]

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return {
        "People": tuple(map(tuple, zip(*people, strict=True))),
        "Places": tuple(map(tuple, zip(*places, strict=True))),
        "Companies": (tuple(fake.company() for _ in range(POOL_SIZES["Companies"])),),
        "Domains": (tuple(fake.free_email_domain() for _ in range(POOL_SIZES["Domains"])),),
        "Banks": (
            tuple(
                f"{fake.last_name()} {fake.random_element(_BANK_KINDS)}"
                for _ in range(POOL_SIZES["Banks"])
            ),
        ),
    }


def _markets_rows() -> list[tuple]:
    """sim.Markets: each market's currency, prices, share as a [lo, hi) slice of [0, 1) and its
    slices of sim.People and sim.Places."""
    rows, lo, people, places = [], 0.0, 0, 0
    for i, m in enumerate(MARKETS):
        sizes = POOL_SIZES if i == 0 else MARKET_POOL_SIZES
        hi = 1.0 if i == len(MARKETS) - 1 else lo + m.share
        rows.append((i, m.country, m.currency, m.price_factor, m.shipping, lo, hi, people,
                     sizes["People"], places, sizes["Places"]))  # fmt: skip
        lo, people, places = hi, people + sizes["People"], places + sizes["Places"]
    return rows


_MARKETS_DDL = (
    "CREATE TABLE sim.Markets (idx INTEGER, Country VARCHAR, CurrencyCode VARCHAR, "
    "PriceFactor DECIMAL(9,4), ShippingFee DECIMAL(19,4), ShareFrom DOUBLE, ShareTo DOUBLE, "
    "PeopleFrom INTEGER, PeopleCount INTEGER, PlacesFrom INTEGER, PlacesCount INTEGER)"
)


def ensure_markets(con: duckdb.DuckDBPyConnection) -> None:
    """A file made before the markets existed (every customer in the US, in usd) gets the one
    market its pools hold, so its activity goes on exactly as before."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'sim' AND table_name = 'Markets'"
    ).fetchone()
    if found and found[0]:
        return
    con.execute(_MARKETS_DDL)
    con.execute(
        "INSERT INTO sim.Markets SELECT 0, 'US', 'usd', 1, 9.95, 0, 1, "
        "0, (SELECT count(*) FROM sim.People), 0, (SELECT count(*) FROM sim.Places)"
    )


def build_pools(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Create and fill sim.Markets, sim.People, sim.Places, sim.Companies, sim.Domains, sim.Banks,
    sim.Items.

    Values travel as whole lists bound to one INSERT (unnest zips them), not row by row.
    """
    values = _faker_values(seed)
    con.execute(_MARKETS_DDL)
    con.executemany("INSERT INTO sim.Markets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _markets_rows())  # fmt: skip
    con.execute(
        "CREATE TABLE sim.People AS SELECT unnest(range(len(f)))::INTEGER AS idx, "
        "unnest(f) AS FirstName, left(unnest(m), 1) AS MiddleName, unnest(l) AS LastName, "
        "unnest(g) AS Gender FROM (SELECT ?::VARCHAR[] f, ?::VARCHAR[] m, ?::VARCHAR[] l, "
        "?::VARCHAR[] g)",
        [list(v) for v in values["People"]],
    )
    con.execute(
        "CREATE TABLE sim.Places AS SELECT unnest(range(len(a)))::INTEGER AS idx, "
        "unnest(a) AS Address1, unnest(b) AS Address2, unnest(c) AS City, unnest(s) AS State, "
        "unnest(z) AS Zip, unnest(k) AS County, unnest(n) AS Country "
        "FROM (SELECT ?::VARCHAR[] a, ?::VARCHAR[] b, ?::VARCHAR[] c, ?::VARCHAR[] s, "
        "?::VARCHAR[] z, ?::VARCHAR[] k, ?::VARCHAR[] n)",
        [list(v) for v in values["Places"]],
    )
    for name in ("Companies", "Domains", "Banks"):
        con.execute(
            f"CREATE TABLE sim.{name} AS SELECT unnest(range(len(v)))::INTEGER AS idx, "
            "unnest(v) AS Value FROM (SELECT ?::VARCHAR[] v)",
            [list(values[name][0])],
        )
    con.execute(
        "CREATE TABLE sim.Items AS SELECT unnest(range(len(c)))::INTEGER AS idx, "
        "(1001 + unnest(range(len(c))))::INTEGER AS ItemID, unnest(c) AS ItemCode, "
        "unnest(d) AS ItemDescription, unnest(p)::DECIMAL(19,4) AS Price, "
        "unnest(b)::DECIMAL(19,4) AS BusinessVolume, unnest(w)::DECIMAL(19,4) AS Weight "
        "FROM (SELECT ?::VARCHAR[] c, ?::VARCHAR[] d, ?::DOUBLE[] p, ?::DOUBLE[] b, ?::DOUBLE[] w)",
        [[item[i] for item in _ITEMS] for i in range(5)],
    )


def pool_params() -> dict[str, int]:
    """Pool sizes as SQL parameters ($n_people, ...), for `rint(..., $n_people)` picks (people
    and places: the first market's, for a customer of no known market)."""
    return {
        "n_people": POOL_SIZES["People"],
        "n_places": POOL_SIZES["Places"],
        "n_companies": POOL_SIZES["Companies"],
        "n_domains": POOL_SIZES["Domains"],
        "n_banks": POOL_SIZES["Banks"],
        "n_items": len(_ITEMS),
    }
