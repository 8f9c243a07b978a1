"""S2 as the Python side reads it (exigo_sync.policy): the treatments of the one policy in
dbt_project.yml, the drift check's name and type lists, and its message. The batches that prove
them end to end: tests/dbt/test_s2_policy.py (dbt) and tests/flow/test_flow_s2_policy.py."""

from __future__ import annotations

import pytest

from exigo_sync.catalog import REPLICATED_TABLES
from exigo_sync.policy import PolicyError, SensitivePolicy, yaml_key
from exigo_sync.settings import REPO_ROOT

POLICY = SensitivePolicy.load(REPO_ROOT / "dbt_project")


@pytest.mark.parametrize(
    "column",
    [
        "SSN", "CustomerSSN", "SocialSecurityNumber", "TaxID", "FederalTaxNumber", "VatNumber",
        "Password", "Passwd", "PasswordSalt", "ApiSecret", "CardToken3", "WalletAddress",
        "Iban2", "AccountNumber2", "BankAccount", "RoutingNo", "DriversLicence",
        "DriverLicenseNumber", "PassportNo", "CVV", "Pin", "NationalID",
    ],
)  # fmt: skip
def test_s2_names_that_look_sensitive(column: str) -> None:
    assert POLICY.looks_sensitive(column, "nvarchar(50)"), column


@pytest.mark.parametrize(
    "column",
    ["LoyaltyTier", "BusinessName", "Shipping", "CompanyName", "Discard", "Notes5",
     'x"; DROP TABLE exigo_sync.batches; --', "a'b", "Accountant", "Taxi"],
)  # fmt: skip
def test_s2_names_that_do_not(column: str) -> None:
    # Taxi: a word beginning with "tax" is taken for one (false alarms cost a `keep` line).
    expected = column == "Taxi"
    assert bool(POLICY.looks_sensitive(column, "nvarchar(50)")) is expected, column


def test_s2_binary_types_look_sensitive() -> None:
    for data_type in ("varbinary(max)", "binary(16)", "image", "BLOB"):
        assert POLICY.looks_sensitive("Photo", data_type) == (
            f"its type looks sensitive ({data_type.split('(')[0].lower()})"
        )
    assert POLICY.looks_sensitive("Photo", "nvarchar(max)") is None


def test_s2_patterns_cover_every_column_the_default_policy_protects() -> None:
    """The drift list is meaningful: had Exigo added the columns the policy drops or masks
    today, each would have stopped the batch."""
    protected = [
        (table, column)
        for table, per_table in POLICY.columns.items()
        for column, treatment in per_table.items()
        if treatment != "keep"
    ]
    assert len(protected) == 14
    for table, column in protected:
        sql_type = REPLICATED_TABLES[table].column(column).sql_type
        assert POLICY.looks_sensitive(column, sql_type), f"{table}.{column}"


def test_s2_drift_check_names_the_line_to_add() -> None:
    with pytest.raises(PolicyError) as info:
        POLICY.check(
            "Customers",
            [("CustomerID", "int"), ("TaxCode", "nvarchar"), ("SSN", "nvarchar"),
             ("LoyaltyTier", "nvarchar"), ("Selfie", "varbinary")],
            "queue.Customers",
        )  # fmt: skip
    assert str(info.value) == (
        "Customers.SSN (new in queue.Customers) is not in the sensitive-column policy and its "
        "name looks sensitive (matches 'ssn'): add `SSN: drop` (or mask / hash / keep) under "
        "`Customers:` in exigo_sensitive_columns (dbt_project/dbt_project.yml); "
        "Customers.Selfie (new in queue.Customers) is not in the sensitive-column policy and "
        "its type looks sensitive (varbinary): add `Selfie: drop` (or mask / hash / keep) under "
        "`Customers:` in exigo_sensitive_columns (dbt_project/dbt_project.yml); nothing was "
        "copied or merged (S2)"
    )


def test_s2_documented_and_named_columns_pass_the_drift_check() -> None:
    # Documented columns were classified when the catalogue was written (TaxTotal is money,
    # CreditCardNumber arrives masked by Exigo); a column the policy names, `keep` included,
    # has been decided.
    POLICY.check("Orders", [("TaxTotal", "money")], "queue.Orders")
    POLICY.check("Payments", [("CreditCardNumber", "nvarchar")], "queue.Payments")
    named = SensitivePolicy.from_vars(
        {
            "exigo_sensitive_columns": {"Customers": {"ssn": "keep"}},
            "exigo_sensitive_name_patterns": [r"\bssn\b"],
        }
    )
    named.check("Customers", [("SSN", "nvarchar")], "queue.Customers")  # case-insensitive


def test_s2_policy_treatments_and_copied_columns() -> None:
    assert POLICY.treatment("Customers", "passwordhash") == "drop"
    assert POLICY.treatment("Customers", "TaxCode") == "mask"
    assert POLICY.treatment("Customers", "Email") == "keep"
    assert POLICY.copied("Customers", ["CustomerID", "PasswordHash", "TaxCode"]) == [
        "CustomerID",
        "TaxCode",
    ]
    assert POLICY.hashed() == []
    hashing = SensitivePolicy.from_vars(
        {"exigo_sensitive_columns": {"Customers": {"Email": "hash"}}}
    )
    assert hashing.hashed() == ["Customers.Email"]


def test_s2_malformed_policy_is_refused_naming_the_entry() -> None:
    def policy(per_table: dict[str, str]) -> SensitivePolicy:
        return SensitivePolicy.from_vars({"exigo_sensitive_columns": {"Customers": per_table}})

    with pytest.raises(PolicyError, match=r"Customers\.Email must be drop, mask, hash or keep"):
        policy({"Email": "scramble"})
    with pytest.raises(PolicyError, match=r"Customers\.CustomerID is a key column"):
        policy({"CustomerID": "drop"})
    with pytest.raises(PolicyError, match="not a regular expression"):
        SensitivePolicy.from_vars({"exigo_sensitive_name_patterns": ["(unclosed"]})


def test_yaml_key_quotes_what_is_not_a_plain_name() -> None:
    assert yaml_key("SSN") == "SSN"
    assert yaml_key("a'b") == "'a''b'"
    assert yaml_key('x"; DROP TABLE t; --') == "'x\"; DROP TABLE t; --'"
