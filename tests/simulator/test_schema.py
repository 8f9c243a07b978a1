"""The simulated dbo schema is the catalogue, and the catalogue is the reference document."""

from __future__ import annotations

import pytest

from exigo_sync.catalog import LOOKUP_TABLES, REPLICATED_TABLES, Column, duckdb_type
from exigo_sync.simulator import SyncSimulator


def test_dbo_columns_types_and_nullability_match_the_catalogue(sim: SyncSimulator) -> None:
    with sim.connect() as con:
        for name, table in REPLICATED_TABLES.items():
            actual = con.execute(
                "SELECT column_name, data_type, is_nullable = 'YES' "
                "FROM information_schema.columns "
                "WHERE table_schema = 'dbo' AND table_name = ? ORDER BY ordinal_position",
                [name],
            ).fetchall()
            expected = [(c.name, duckdb_type(c.sql_type), c.nullable) for c in table.columns]
            assert actual == expected, name


def test_dbo_primary_keys_match_the_catalogue(sim: SyncSimulator) -> None:
    with sim.connect() as con:
        rows = con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE schema_name = 'dbo' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
    pks = {t: tuple(cols) for t, cols in rows}
    for name, table in REPLICATED_TABLES.items():
        assert pks[name] == table.key
    for name, lookup in LOOKUP_TABLES.items():
        assert pks[name] == (lookup.id_column,)


def test_lookup_tables_hold_the_reference_values(sim: SyncSimulator) -> None:
    assert (7, "Accepted") in sim.lookup_rows("OrderStatuses")
    assert (8, "ReturnOrder") in sim.lookup_rows("OrderTypes")
    assert (17, "Wallet") in sim.lookup_rows("PaymentTypes")
    assert sim.lookup_rows("CustomerStatuses")[0] == (0, "Deleted")
    for name, lookup in LOOKUP_TABLES.items():
        assert sim.lookup_rows(name) == list(lookup.values)


# Statements copied from shared/exigo-sync-schema.md (NOT NULL unless marked NULL).
REFERENCE_SPOT_CHECKS = [
    ("Customers", "Email", "nvarchar(50)", False),
    ("Customers", "MainAddress2", "nvarchar(100)", True),  # {P}Address2 ... NULL
    ("Customers", "OtherVerified", "bit", False),
    ("Customers", "PasswordHash", "varbinary(50)", True),
    ("Customers", "SponsorID", "int", True),
    ("Customers", "CheckThreshold", "money", False),
    ("Customers", "Field15", "nvarchar(100)", False),
    ("Customers", "Date5", "datetime", True),
    ("Customers", "Notes", "nvarchar(max)", True),
    ("Customers", "CreatedBy", "nvarchar(30)", False),
    ("Orders", "Email", "nvarchar(200)", False),
    ("Orders", "Other10Total", "money", False),
    ("Orders", "TrackingNumber5", "nvarchar(50)", False),
    ("Orders", "Other11", "nvarchar(200)", True),
    ("Orders", "ReturnOrderID", "int", True),
    ("Orders", "DeclineCount", "int", False),
    ("OrderDetails", "OrderDetailID", "uniqueidentifier", True),
    ("OrderDetails", "Quantity", "money", False),  # "Quantity (yes, money)"
    ("OrderDetails", "Weight", "money", True),
    ("OrderDetails", "Other10Each", "money", False),
    ("OrderDetails", "ItemCode", "nvarchar(20)", False),
    ("Payments", "OrderID", "int", True),
    ("Payments", "MerchantTransactionKey", "nvarchar(300)", True),
    ("Payments", "CheckBankName", "nvarchar(100)", True),
    ("CustomerAccounts", "BankRoutingNumber", "nvarchar(50)", False),
    ("CustomerAccounts", "PrimaryWalletAccount", "nvarchar(max)", True),
    ("CustomerAccounts", "SecondaryWalletTypeID", "int", False),
    ("CustomerAccounts", "CreditCardToken2", "nvarchar(50)", True),
    ("CustomerAccounts", "ExpirationYear2", "int", True),
    ("CustomerAccounts", "ModifiedBy", "nvarchar(50)", False),
    ("CustomerSites", "Company", "nvarchar(255)", False),
    ("CustomerSites", "Notes4", "nvarchar(max)", True),
    ("CustomerSites", "Url10Description", "nvarchar(200)", True),
    ("CustomerSites", "Country", "nvarchar(50)", False),
]


@pytest.mark.parametrize(("table", "column", "sql_type", "nullable"), REFERENCE_SPOT_CHECKS)
def test_catalogue_agrees_with_the_reference_document(
    table: str, column: str, sql_type: str, nullable: bool
) -> None:
    assert REPLICATED_TABLES[table].column(column) == Column(column, sql_type, nullable)


def test_catalogue_column_counts_keys_and_version_times_match_the_reference() -> None:
    # counted by hand from the reference, expanding Field1…Field15, {P}Address1, suffix 2 etc.
    assert {n: len(t.columns) for n, t in REPLICATED_TABLES.items()} == {
        "Customers": 97,
        "Orders": 84,
        "OrderDetails": 46,
        "Payments": 30,
        "CustomerAccounts": 43,
        "CustomerSites": 40,
    }
    assert {n: t.key for n, t in REPLICATED_TABLES.items()} == {
        "Customers": ("CustomerID",),
        "Orders": ("OrderID",),
        "OrderDetails": ("OrderID", "OrderLine"),
        "Payments": ("PaymentID",),
        "CustomerAccounts": ("CustomerID",),
        "CustomerSites": ("CustomerID",),
    }
    assert REPLICATED_TABLES["OrderDetails"].version_time_column is None
    assert all(
        t.version_time_column == "ModifiedDate"
        for n, t in REPLICATED_TABLES.items()
        if n != "OrderDetails"
    )
    assert list(REPLICATED_TABLES) == [
        "Customers",
        "Orders",
        "OrderDetails",
        "Payments",
        "CustomerAccounts",
        "CustomerSites",
    ]
    assert "CreatedDate" not in REPLICATED_TABLES["Payments"].column_names


@pytest.mark.parametrize(
    ("sql_type", "expected"),
    [
        ("int", "INTEGER"),
        ("bit", "BOOLEAN"),
        ("nvarchar(50)", "VARCHAR"),
        ("nvarchar(max)", "VARCHAR"),
        ("datetime", "TIMESTAMP"),
        ("money", "DECIMAL(19,4)"),
        ("varbinary(50)", "BLOB"),
        ("uniqueidentifier", "UUID"),
    ],
)
def test_duckdb_type_maps_sql_server_types(sql_type: str, expected: str) -> None:
    assert duckdb_type(sql_type) == expected


def test_duckdb_type_refuses_unknown_types() -> None:
    with pytest.raises(ValueError, match="geography"):
        duckdb_type("geography")
