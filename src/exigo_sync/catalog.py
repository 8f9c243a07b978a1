"""Catalogue of the Exigo sync tables exigo-sync replicates, transcribed from
`shared/exigo-sync-schema.md`, and the one owner of the entity list.

Every other list of tables derives from here: the simulator DDL, the queue tables the clients
count and land, the ledger's per-entity statistics, the dbt YAML and the generated dbt macros
(`exigo_catalog()`, `exigo_entities()`; `dbt_project/scripts/generate_yaml.py`). Adding a
replicated table is one entry in `REPLICATED_TABLES` plus regeneration.

Every column in document order, its SQL Server type, and whether it is nullable (the reference
says NOT NULL unless it marks a column NULL). Keys come first, as the reference names them in
each heading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from exigo_sync.naming import column_name, entity_name


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # SQL Server type as written in the reference, lower case: "nvarchar(50)"
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # The column the queue uses for change detection; None for OrderDetails, whose lines travel
    # with their parent order.
    version_time_column: str | None
    # A table without a version time takes its parent's: (parent table, ((column here, column
    # there), ...)). A changed parent arrives with ALL its current rows of this table.
    parent: tuple[str, tuple[tuple[str, str], ...]] | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


@dataclass(frozen=True)
class LookupTable:
    name: str
    id_column: str
    description_column: str
    values: tuple[tuple[int, str], ...]

    @property
    def columns(self) -> tuple[Column, ...]:
        return (Column(self.id_column, "int"), Column(self.description_column, "nvarchar(100)"))

    @property
    def key(self) -> tuple[str, ...]:
        """The key, as `Table.key` names it: a lookup is keyed by its id."""
        return (self.id_column,)


def _cols(names: Iterable[str], sql_type: str, nullable: bool = False) -> list[Column]:
    return [Column(n, sql_type, nullable) for n in names]


def _numbered(template: str, first: int, last: int) -> list[str]:
    return [template.format(i) for i in range(first, last + 1)]


# --- dbo.Customers ---------------------------------------------------------------------------


def _customer_address(prefix: str) -> list[Column]:
    return [
        Column(f"{prefix}Address1", "nvarchar(100)"),
        Column(f"{prefix}Address2", "nvarchar(100)", True),
        Column(f"{prefix}Address3", "nvarchar(100)"),
        *_cols(
            [f"{prefix}{s}" for s in ("City", "State", "Zip", "Country", "County")],
            "nvarchar(50)",
        ),
        Column(f"{prefix}Verified", "bit"),
    ]


_CUSTOMERS: list[Column] = [
    Column("CustomerID", "int"),
    *_cols(["FirstName", "MiddleName", "LastName", "NameSuffix"], "nvarchar(50)"),
    Column("Company", "nvarchar(100)"),
    *_cols(["CustomerTypeID", "CustomerStatusID"], "int"),
    Column("Email", "nvarchar(50)"),
    *_cols(["Phone", "Phone2", "MobilePhone", "Fax"], "nvarchar(20)"),
    *_customer_address("Main"),
    *_customer_address("Mail"),
    *_customer_address("Other"),
    Column("CanLogin", "bit"),
    Column("LoginName", "nvarchar(100)", True),
    Column("PasswordHash", "varbinary(50)", True),
    *_cols(["RankID", "EnrollerID", "SponsorID"], "int", True),
    Column("BirthDate", "datetime", True),
    Column("CurrencyCode", "nvarchar(3)"),
    Column("LanguageID", "int", True),
    Column("Gender", "nvarchar(1)"),
    Column("PayableToName", "nvarchar(50)"),
    Column("DefaultWarehouseID", "int", True),
    Column("PayableTypeID", "int"),
    Column("CheckThreshold", "money"),
    Column("TaxCode", "nvarchar(50)", True),
    Column("TaxCodeTypeID", "int"),
    Column("IsSalesTaxExempt", "bit"),
    Column("SalesTaxCode", "nvarchar(50)", True),
    Column("SalesTaxExemptExpireDate", "datetime", True),
    Column("VatRegistration", "nvarchar(50)"),
    Column("BinaryPlacementTypeID", "int"),
    *_cols(["UseBinaryHoldingTank", "IsInBinaryHoldingTank"], "bit"),
    Column("IsEmailSubscribed", "bit", True),
    Column("EmailSubscribeIP", "nvarchar(50)", True),
    Column("IsSMSSubscribed", "bit", True),
    *_cols(
        ["EmailSubscribeDate", "EmailUnsubscribeDate", "SMSSubscribeDate", "SMSUnsubscribeDate"],
        "datetime",
        True,
    ),
    Column("Notes", "nvarchar(max)", True),
    *_cols(_numbered("Field{}", 1, 15), "nvarchar(100)"),
    *_cols(_numbered("Date{}", 1, 5), "datetime", True),
    *_cols(["CreatedDate", "ModifiedDate"], "datetime"),
    *_cols(["CreatedBy", "ModifiedBy"], "nvarchar(30)"),
    Column("TerminationReason", "int", True),
    Column("CustomerKey", "nvarchar(50)", True),
]

# --- dbo.Orders ------------------------------------------------------------------------------

_ORDERS: list[Column] = [
    Column("OrderID", "int"),
    *_cols(
        [
            "CustomerID",
            "OrderStatusID",
            "WarehouseID",
            "ShipMethodID",
            "OrderTypeID",
            "PriceTypeID",
        ],
        "int",
    ),
    Column("OrderDate", "datetime"),
    Column("CurrencyCode", "nvarchar(3)"),
    *_cols(["FirstName", "MiddleName", "LastName", "NameSuffix"], "nvarchar(50)"),
    Column("Company", "nvarchar(100)"),
    *_cols(["Address1", "Address2", "Address3"], "nvarchar(100)"),
    *_cols(["City", "State", "Zip", "Country", "County"], "nvarchar(50)"),
    Column("Email", "nvarchar(200)"),
    Column("Phone", "nvarchar(50)"),
    Column("Notes", "nvarchar(500)"),
    *_cols(
        [
            "Total",
            "SubTotal",
            "TaxTotal",
            "ShippingTotal",
            "DiscountTotal",
            "DiscountPercent",
            "WeightTotal",
            "BusinessVolumeTotal",
            "CommissionableVolumeTotal",
            *_numbered("Other{}Total", 1, 10),
            "TotalTaxable",
            "HandlingFee",
            "ShippingTax",
            "OrderTax",
            "FedTaxTotal",
            "StateTaxTotal",
        ],
        "money",
    ),
    *_cols(_numbered("TrackingNumber{}", 1, 5), "nvarchar(50)"),
    *_cols(_numbered("Other{}", 11, 20), "nvarchar(200)", True),
    *_cols(["IsCommissionable", "SuppressPackSlipPrice", "IsRMA"], "bit"),
    *_cols(
        [
            "AutoOrderID",
            "ReturnOrderID",
            "ReplacementOrderID",
            "ParentOrderID",
            "TransferToCustomerID",
            "PartyID",
            "OrderSubStatusID",
        ],
        "int",
        True,
    ),
    Column("BatchID", "int"),
    Column("DeclineCount", "int"),
    Column("ShippedDate", "datetime", True),
    Column("LockedDate", "datetime", True),
    *_cols(["CreatedDate", "ModifiedDate"], "datetime"),
    *_cols(["CreatedBy", "ModifiedBy"], "nvarchar(30)"),
    Column("OrderKey", "nvarchar(50)", True),
]

# --- dbo.OrderDetails ------------------------------------------------------------------------

_ORDER_DETAIL_MONEY: list[Column] = [
    *_cols(["Quantity", "PriceEach", "PriceTotal", "Tax", "WeightEach"], "money"),
    Column("Weight", "money", True),
    *_cols(
        [
            "BusinessVolumeEach",
            "BusinessVolume",
            "CommissionableVolumeEach",
            "CommissionableVolume",
        ],
        "money",
    ),
    *_cols([name for i in range(1, 11) for name in (f"Other{i}Each", f"Other{i}")], "money"),
    *_cols(["Taxable", "FedTax", "StateTax", "CityTax", "CountyTax", "ManualTax"], "money"),
]

_ORDER_DETAILS: list[Column] = [
    Column("OrderID", "int"),
    Column("OrderLine", "int"),
    *_cols(["OrderDetailID", "ParentOrderDetailID"], "uniqueidentifier", True),
    Column("ItemID", "int"),
    Column("ItemCode", "nvarchar(20)"),
    Column("ItemDescription", "nvarchar(500)"),
    Column("ParentItemID", "int", True),
    *_ORDER_DETAIL_MONEY,
    Column("IsStateTaxOverride", "bit"),
    Column("Reference1", "nvarchar(100)"),
]

# --- dbo.Payments ----------------------------------------------------------------------------

_PAYMENTS: list[Column] = [
    Column("PaymentID", "int"),
    Column("CustomerID", "int"),
    Column("OrderID", "int", True),
    Column("PaymentTypeID", "int"),
    Column("PaymentDate", "datetime"),
    Column("Amount", "money"),
    Column("CurrencyCode", "nvarchar(3)"),
    Column("WarehouseID", "int"),
    Column("BillingName", "nvarchar(50)", True),
    Column("CreditCardTypeID", "int"),
    Column("CreditCardNumber", "nvarchar(50)", True),
    Column("AuthorizationCode", "nvarchar(50)", True),
    *_cols(["CheckNumber", "CheckAccountNumber", "CheckRoutingNumber"], "nvarchar(50)", True),
    Column("CheckDate", "datetime", True),
    Column("CheckBankName", "nvarchar(100)", True),
    Column("Memo", "nvarchar(500)", True),
    Column("WalletTypeID", "int", True),
    Column("DriversLicenseNumber", "nvarchar(50)", True),
    Column("MerchantTypeID", "int", True),
    Column("MerchantTransactionKey", "nvarchar(300)", True),
    Column("PointAccountID", "int", True),
    *_cols(["BillingAddress1", "BillingAddress2"], "nvarchar(100)", True),
    *_cols(["BillingCity", "BillingState", "BillingZip", "BillingCountry"], "nvarchar(50)", True),
    Column("ModifiedDate", "datetime"),
]

# --- dbo.CustomerAccounts --------------------------------------------------------------------

# The reference says the secondary card has "the same columns with suffix 2". Plain suffix 2
# on BillingAddress would collide with the primary card's BillingAddress2, so the secondary
# card's two address lines take "_2" (BillingAddress_2, BillingAddress2_2); every other
# secondary column takes a plain "2".
_SECONDARY_ADDRESS_NAMES = {
    "BillingAddress": "BillingAddress_2",
    "BillingAddress2": "BillingAddress2_2",
}


def _card(suffix: str) -> list[Column]:
    def n(base: str) -> str:
        if suffix and base in _SECONDARY_ADDRESS_NAMES:
            return _SECONDARY_ADDRESS_NAMES[base]
        return base + suffix

    return [
        Column(n("CreditCardDisplay"), "nvarchar(50)", True),
        *_cols([n("ExpirationMonth"), n("ExpirationYear")], "int", True),
        Column(n("CreditCardTypeID"), "int"),
        Column(n("BillingName"), "nvarchar(50)"),
        *_cols([n("BillingAddress"), n("BillingAddress2")], "nvarchar(100)", True),
        *_cols(
            [n("BillingCity"), n("BillingState"), n("BillingZip"), n("BillingCountry")],
            "nvarchar(50)",
            True,
        ),
    ]


_CUSTOMER_ACCOUNTS: list[Column] = [
    Column("CustomerID", "int"),
    *_card(""),
    *_card("2"),
    Column("BankAccountNumber", "nvarchar(50)", True),
    *_cols(["BankRoutingNumber", "BankNameOnAccount"], "nvarchar(50)"),
    Column("BankAccountType", "int"),
    *_cols(
        [
            "DepositNameOnAccount",
            "DepositAccountNumber",
            "DepositRoutingNumber",
            "Iban",
            "SwiftCode",
        ],
        "nvarchar(50)",
    ),
    Column("DepositBankName", "nvarchar(100)"),
    Column("PrimaryWalletTypeID", "int"),
    Column("PrimaryWalletAccount", "nvarchar(max)", True),
    Column("SecondaryWalletTypeID", "int"),
    Column("SecondaryWalletAccount", "nvarchar(max)", True),
    *_cols(["CreditCardTokenType", "CreditCardTokenType2"], "int", True),
    *_cols(["CreditCardToken", "CreditCardToken2"], "nvarchar(50)", True),
    Column("ModifiedDate", "datetime"),
    Column("ModifiedBy", "nvarchar(50)"),
]

# --- dbo.CustomerSites -----------------------------------------------------------------------

_CUSTOMER_SITES: list[Column] = [
    Column("CustomerID", "int"),
    *_cols(["WebAlias", "FirstName", "LastName"], "nvarchar(100)"),
    Column("Company", "nvarchar(255)"),
    *_cols(["Email", "Phone", "Phone2", "Fax"], "nvarchar(100)"),
    *_cols(["Address1", "Address2"], "nvarchar(200)"),
    *_cols(["City", "State", "Zip"], "nvarchar(100)"),
    Column("Country", "nvarchar(50)"),
    *_cols(_numbered("Notes{}", 1, 4), "nvarchar(max)", True),
    *_cols(_numbered("Url{}", 1, 10), "nvarchar(200)", True),
    *_cols(_numbered("Url{}Description", 1, 10), "nvarchar(200)", True),
    Column("ModifiedDate", "datetime"),
]


def _table(
    name: str,
    columns: list[Column],
    key: tuple[str, ...],
    vt: str | None,
    parent: tuple[str, tuple[tuple[str, str], ...]] | None = None,
) -> Table:
    names = [c.name for c in columns]
    # Guard the transcription: a duplicated or missing key column is a catalogue bug.
    assert len(names) == len(set(names)), f"duplicate column in {name}"
    assert all(k in names for k in key), f"key of {name} not among its columns"
    assert (vt is None) == (parent is not None), f"{name}: a version time or a parent, not both"
    return Table(name, tuple(columns), key, vt, parent)


# Queue order: the order the vendor note lists the queue tables in.
REPLICATED_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        _table("Customers", _CUSTOMERS, ("CustomerID",), "ModifiedDate"),
        _table("Orders", _ORDERS, ("OrderID",), "ModifiedDate"),
        _table(
            "OrderDetails",
            _ORDER_DETAILS,
            ("OrderID", "OrderLine"),
            None,
            parent=("Orders", (("OrderID", "OrderID"),)),
        ),
        _table("Payments", _PAYMENTS, ("PaymentID",), "ModifiedDate"),
        _table("CustomerAccounts", _CUSTOMER_ACCOUNTS, ("CustomerID",), "ModifiedDate"),
        _table("CustomerSites", _CUSTOMER_SITES, ("CustomerID",), "ModifiedDate"),
    )
}

# Status code values from the reference; CustomerStatuses / CustomerTypes are company-defined,
# so these are plausible values (0 = Deleted and 1 = Active are the common ones it names).
LOOKUP_TABLES: dict[str, LookupTable] = {
    t.name: t
    for t in (
        LookupTable(
            "OrderStatuses",
            "OrderStatusID",
            "OrderStatusDescription",
            (
                (0, "Incomplete"),
                (1, "Pending"),
                (2, "CCDeclined"),
                (3, "ACHDeclined"),
                (4, "Cancelled"),
                (5, "CCPending"),
                (6, "ACHPending"),
                (7, "Accepted"),
                (8, "Printed"),
                (9, "Shipped"),
                (10, "PendingInventory"),
            ),
        ),
        LookupTable(
            "OrderTypes",
            "OrderTypeID",
            "OrderTypeDescription",
            (
                (1, "CustomerService"),
                (2, "ShoppingCart"),
                (3, "WebWizard"),
                (4, "RecurringOrder"),
                (5, "Import"),
                (6, "BackOrder"),
                (7, "ReplacementOrder"),
                (8, "ReturnOrder"),
                (9, "WebRecurringOrder"),
                (10, "TicketSystem"),
                (11, "APIOrder"),
            ),
        ),
        LookupTable(
            "PaymentTypes",
            "PaymentTypeID",
            "PaymentTypeDescription",
            (
                (0, "Cash"),
                (1, "CreditCard"),
                (2, "Check"),
                (3, "CreditVoucher"),
                (6, "UseCredit"),
                (7, "ACHDebit"),
                (9, "BankWire"),
                (10, "PointRedemption"),
                (17, "Wallet"),
            ),
        ),
        LookupTable(
            "CustomerStatuses",
            "CustomerStatusID",
            "CustomerStatusDescription",
            ((0, "Deleted"), (1, "Active"), (2, "Inactive"), (3, "Terminated")),
        ),
        LookupTable(
            "CustomerTypes",
            "CustomerTypeID",
            "CustomerTypeDescription",
            ((1, "Retail"), (2, "Preferred Customer"), (3, "Distributor")),
        ),
    )
}

# The queue tables, in the vendor note's order.
QUEUE_TABLES: tuple[str, ...] = tuple(REPLICATED_TABLES)

EntityKind = Literal["replicated", "lookup"]


@dataclass(frozen=True)
class Entity:
    """One table the warehouse keeps SCD2 history of, in the warehouse's words."""

    name: str  # the dbt entity: customers, order_details, order_statuses
    table: str  # the Exigo table: Customers, OrderDetails, OrderStatuses
    kind: EntityKind  # replicated: a queue table; lookup: a dbo table read whole every batch
    keys: tuple[str, ...]  # source key columns: ("OrderID", "OrderLine")
    key_columns: tuple[str, ...]  # warehouse key columns: ("order_id", "order_line")
    parent: str | None = None  # the entity whose version time this one's rows take
    # (column here, column of the parent), source names: (("OrderID", "OrderID"),)
    parent_keys: tuple[tuple[str, str], ...] = ()


def _entity(table: Table | LookupTable, kind: EntityKind) -> Entity:
    parent = getattr(table, "parent", None)
    return Entity(
        name=entity_name(table.name),
        table=table.name,
        kind=kind,
        keys=tuple(table.key),
        key_columns=tuple(column_name(k) for k in table.key),
        parent=entity_name(parent[0]) if parent else None,
        parent_keys=parent[1] if parent else (),
    )


# Every entity, replicated tables first (queue order), then the lookups.
ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        *(_entity(t, "replicated") for t in REPLICATED_TABLES.values()),
        *(_entity(t, "lookup") for t in LOOKUP_TABLES.values()),
    )
}
# The six entities a queue.Refresh delivers (the ledger counts and merges these).
REPLICATED_ENTITIES: tuple[Entity, ...] = tuple(
    e for e in ENTITIES.values() if e.kind == "replicated"
)
REPLICATED_ENTITY_NAMES: tuple[str, ...] = tuple(e.name for e in REPLICATED_ENTITIES)
LOOKUP_ENTITY_NAMES: tuple[str, ...] = tuple(
    e.name for e in ENTITIES.values() if e.kind == "lookup"
)
# The dbt tag of the lookups' models and of every data test on them (the generated YAML).
LOOKUPS_TAG = "exigo_lookups"


_NVARCHAR = re.compile(r"^n?(var)?char(\((\d+|max)\))?$|^n?text$|^sysname$")
_VARBINARY = re.compile(r"^(var)?binary(\((\d+|max)\))?$|^image$")
_SIMPLE_TYPES = {
    "int": "INTEGER",
    "bigint": "BIGINT",
    "smallint": "SMALLINT",
    "tinyint": "UTINYINT",
    "bit": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "smalldatetime": "TIMESTAMP",
    "date": "DATE",
    "money": "DECIMAL(19,4)",
    "smallmoney": "DECIMAL(10,4)",
    "uniqueidentifier": "UUID",
    "float": "DOUBLE",
    "real": "FLOAT",
}


def duckdb_type(sql_type: str) -> str:
    """The DuckDB type the simulator uses for a SQL Server type from the reference."""
    t = sql_type.strip().lower()
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t]
    if _NVARCHAR.match(t):
        return "VARCHAR"
    if _VARBINARY.match(t):
        return "BLOB"
    decimal = re.match(r"^(?:decimal|numeric)\((\d+),\s*(\d+)\)$", t)
    if decimal:
        return f"DECIMAL({decimal.group(1)},{decimal.group(2)})"
    if re.match(r"^(datetime2|time)(\(\d\))?$", t):
        return "TIMESTAMP" if t.startswith("datetime2") else "TIME"
    raise ValueError(f"no DuckDB mapping for SQL Server type {sql_type!r}")
