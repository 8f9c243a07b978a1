"""Value pools built once with Faker (seeded) into sim.* tables.

Generation then picks from them set-based by hash, so realistic names and places cost nothing
per row however many rows are generated.
"""

from __future__ import annotations

from functools import lru_cache

import duckdb
from faker import Faker

POOL_SIZES = {"People": 2000, "Places": 1000, "Companies": 400, "Domains": 25, "Banks": 60}

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


@lru_cache(maxsize=4)
def _faker_values(seed: int) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Every pool's values for `seed`, drawn in a fixed order from one seeded Faker. Cached:
    Faker takes ~0.4 s for these, and tests create many databases with the same seed."""
    fake = Faker("en_US")
    fake.seed_instance(seed)

    people = []
    for _ in range(POOL_SIZES["People"]):
        if fake.random.random() < 0.5:
            people.append((fake.first_name_female(), fake.first_name_female(), "F"))
        else:
            people.append((fake.first_name_male(), fake.first_name_male(), "M"))
    last_names = [fake.last_name() for _ in range(POOL_SIZES["People"])]

    n = POOL_SIZES["Places"]
    streets = [fake.street_address() for _ in range(n)]
    secondary = [fake.secondary_address() if fake.random.random() < 0.25 else "" for _ in range(n)]
    cities = [fake.city() for _ in range(n)]
    states = [fake.state_abbr(include_territories=False) for _ in range(n)]
    zips = [fake.zipcode_in_state(s) for s in states]
    # en_US Faker has no county provider; "<surname> County" is the commonest US county form.
    counties = [f"{fake.last_name()} County" for _ in range(n)]

    return {
        "People": (
            tuple(p[0] for p in people),
            tuple(p[1] for p in people),
            tuple(last_names),
            tuple(p[2] for p in people),
        ),
        "Places": tuple(map(tuple, (streets, secondary, cities, states, zips, counties))),
        "Companies": (tuple(fake.company() for _ in range(POOL_SIZES["Companies"])),),
        "Domains": (tuple(fake.free_email_domain() for _ in range(POOL_SIZES["Domains"])),),
        "Banks": (
            tuple(
                f"{fake.last_name()} {fake.random_element(_BANK_KINDS)}"
                for _ in range(POOL_SIZES["Banks"])
            ),
        ),
    }


def build_pools(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Create and fill sim.People, sim.Places, sim.Companies, sim.Domains, sim.Banks, sim.Items.

    Values travel as whole lists bound to one INSERT (unnest zips them), not row by row.
    """
    values = _faker_values(seed)
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
        "unnest(z) AS Zip, unnest(k) AS County, 'US' AS Country "
        "FROM (SELECT ?::VARCHAR[] a, ?::VARCHAR[] b, ?::VARCHAR[] c, ?::VARCHAR[] s, "
        "?::VARCHAR[] z, ?::VARCHAR[] k)",
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
    """Pool sizes as SQL parameters ($n_people, ...), for `rint(..., $n_people)` picks."""
    return {
        "n_people": POOL_SIZES["People"],
        "n_places": POOL_SIZES["Places"],
        "n_companies": POOL_SIZES["Companies"],
        "n_domains": POOL_SIZES["Domains"],
        "n_banks": POOL_SIZES["Banks"],
        "n_items": len(_ITEMS),
    }
