"""S2: every treatment of the sensitive-column policy (drop, mask, hash, keep), as configured in its
one place (the var) and as changed there."""

from __future__ import annotations

import copy
import hashlib
from datetime import timedelta

import pytest

from exigo_sync.policy import PolicyError
from tests.dbt.helpers import SENSITIVE_POLICY, default_row, execute_source, failures, put_rows
from tests.dbt.scenario import T0, history_snapshot, load_batch_one


def sha256_hex(text: str) -> str:
    """What `exigo_hash(exigo_text(col))` yields on DuckDB: SHA-256 of the UTF-8 text, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_s2_policy_drops_and_masks(dbt_env):
    load_batch_one(dbt_env)
    res = dbt_env.build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)
    customer = dbt_env.query("select * from exigo_current.customers_current where customer_id = 1")[
        0
    ]
    assert "password_hash" not in customer
    assert customer["tax_code"] == "****6789"
    account = dbt_env.query("select * from exigo_history.customer_accounts_history")[0]
    assert "credit_card_token" not in account and "primary_wallet_account" not in account
    assert account["iban"] == "****3000"
    # Values of 4 characters or fewer are masked entirely; NULL stays NULL.
    assert account["bank_account_number"] is None
    assert account["bank_routing_number"] == "****"  # the fixture's default value is 'x'
    # Dropped columns are not even copied into the landing schemas the batch pins (S2: secrets
    # are never copied into the warehouse).
    for schema in ("exigo_landing", "exigo_landing_dbo", "exigo_staging", "exigo_history",
                   "exigo_current"):  # fmt: skip
        leaked = dbt_env.query(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = ? and lower(column_name) in ('password_hash', "
            "'credit_card_token', 'credit_card_token2', 'primary_wallet_account', "
            "'secondary_wallet_account', 'passwordhash', 'creditcardtoken', 'creditcardtoken2', "
            "'primarywalletaccount', 'secondarywalletaccount')",
            [schema],
        )
        assert leaked == []


def test_s2_hash_treatment_configurable(dbt_env):
    # dbt replaces a dict var given with --vars whole, so pass the full policy with two changes:
    # Email (kept by default) is hashed, TaxCode (masked by default) is kept.
    policy = copy.deepcopy(SENSITIVE_POLICY)
    assert policy["Customers"].get("Email", "keep") == "keep"
    assert policy["Customers"]["TaxCode"] == "mask"
    assert policy["Customers"]["PasswordHash"] == "drop"
    policy["Customers"]["Email"] = "hash"
    policy["Customers"]["TaxCode"] = "keep"

    load_batch_one(dbt_env)
    source = {
        1: {"Email": "ann@example.com", "TaxCode": "123-45-6789"},
        2: {"Email": "zoë.müller@example.com", "TaxCode": None},  # non-ASCII; NULL stays NULL
    }
    put_rows(
        dbt_env.source,
        "queue",
        "Customers",
        [
            default_row(
                "Customers",
                CustomerID=cid,
                ModifiedDate=T0,
                PasswordHash=b"secret-hash",
                **values,
            )
            for cid, values in source.items()
        ],
    )
    res = dbt_env.fast_build(
        1, T0 + timedelta(hours=1), extra_vars={"exigo_sensitive_columns": policy}
    )
    assert res.success, failures(res)

    expected = {
        cid: {"email": sha256_hex(v["Email"]), "tax_code": v["TaxCode"]}
        for cid, v in source.items()
    }
    for relation in (
        "exigo_staging.stg_exigo__customers",
        "exigo_history.customers_history",
        "exigo_current.customers_current",
    ):
        rows = dbt_env.query(f"select * from {relation} order by customer_id")
        got = {r["customer_id"]: {"email": r["email"], "tax_code": r["tax_code"]} for r in rows}
        assert got == expected, relation
        assert "password_hash" not in rows[0], f"{relation} carries a dropped column"
    # The hash is the full, never truncated, lower-case hex digest.
    assert all(len(v["email"]) == 64 for v in expected.values())

    # The rest of the policy still applies: the default-masked IBAN is masked.
    account = dbt_env.query("select iban from exigo_current.customer_accounts_current")[0]
    assert account["iban"] == "****3000"


def test_s2_new_sensitive_looking_column_stops_the_batch_naming_the_policy_line(merged_env):
    """Exigo adds Customers.SSN: the batch stops before anything is copied or merged, naming
    the one line to add; once the policy names the column it follows its treatment, and a new
    column that does not look sensitive keeps following B3 (carried with its own type)."""
    before = history_snapshot(merged_env)
    execute_source(
        merged_env.source,
        """
        alter table queue."Customers" add column "SSN" varchar;
        alter table queue."Customers" add column "LoyaltyTier" varchar;
        """,
    )
    put_rows(
        merged_env.source,
        "queue",
        "Customers",
        [
            default_row(
                "Customers", CustomerID=2, FirstName="Bob", ModifiedDate=T0 + timedelta(hours=5),
                SSN="987-65-4321", LoyaltyTier="gold",
            )
        ],
    )  # fmt: skip
    with pytest.raises(PolicyError) as info:
        merged_env.fast_build(3, T0 + timedelta(hours=6))
    assert str(info.value) == (
        "Customers.SSN (new in queue.Customers) is not in the sensitive-column policy and its "
        "name looks sensitive (matches 'ssn'): add `SSN: drop` (or mask / hash / keep) under "
        "`Customers:` in exigo_sensitive_columns (dbt_project/dbt_project.yml); nothing was "
        "copied or merged (S2)"
    )
    assert history_snapshot(merged_env) == before
    landed = merged_env.query(
        "select column_name from information_schema.columns "
        "where table_schema = 'exigo_landing' and table_name = 'Customers'"
    )
    assert "SSN" not in {r["column_name"] for r in landed}, "the value reached the warehouse"

    # The operator adds `SSN: mask`: the batch merges, SSN masked, LoyaltyTier carried (B3).
    policy = copy.deepcopy(SENSITIVE_POLICY)
    policy["Customers"]["SSN"] = "mask"
    res = merged_env.fast_build(
        3, T0 + timedelta(hours=6), extra_vars={"exigo_sensitive_columns": policy}
    )
    assert res.success, failures(res)
    row = merged_env.query(
        "select ssn, loyalty_tier from exigo_current.customers_current where customer_id = 2"
    )[0]
    assert row == {"ssn": "****4321", "loyalty_tier": "gold"}
