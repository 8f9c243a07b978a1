"""S2: every treatment of the sensitive-column policy (drop, mask, hash, keep), as configured in its
one place (the var) and as changed there."""

from __future__ import annotations

import copy
import hashlib
import hmac
from datetime import timedelta

import pytest

from exigo_sync.policy import PolicyError
from tests.dbt.helpers import SENSITIVE_POLICY, default_row, execute_source, failures, put_rows
from tests.dbt.scenario import T0, history_snapshot, load_batch_one

# The HMAC key of these tests (exigo_sync.hash_key): dbt's process reads it from its environment.
HASH_KEY = "s2-test-key-0123456789abcdef0123456789"


def hmac_hex(text: str) -> str:
    """What `exigo_keyed_hash(exigo_text(col))` yields on DuckDB: HMAC-SHA-256 of the UTF-8 text
    keyed with the test key, hex."""
    return hmac.new(HASH_KEY.encode(), text.encode("utf-8"), hashlib.sha256).hexdigest()


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


def test_s2_hash_treatment_is_keyed_and_configurable(dbt_env):
    """`hash` is HMAC-SHA-256 under EXIGO_SYNC_HASH_KEY (never a bare digest a dictionary
    reverses); equal values hash equal in every batch; without the key the batch fails naming
    the variable; the key is in no compiled file and no dbt log."""
    # dbt replaces a dict var given with --vars whole, so pass the full policy with two changes:
    # Email (kept by default) is hashed, TaxCode (masked by default) is kept.
    policy = copy.deepcopy(SENSITIVE_POLICY)
    assert policy["Customers"].get("Email", "keep") == "keep"
    assert policy["Customers"]["TaxCode"] == "mask"
    assert policy["Customers"]["PasswordHash"] == "drop"
    policy["Customers"]["Email"] = "hash"
    policy["Customers"]["TaxCode"] = "keep"
    hashing = {"exigo_sensitive_columns": policy}
    with_key = {"EXIGO_SYNC_HASH_KEY": HASH_KEY}

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
    res = dbt_env.fast_build(1, T0 + timedelta(hours=1), extra_vars=hashing, env=with_key)
    assert res.success, failures(res)

    expected = {
        cid: {"email": hmac_hex(v["Email"]), "tax_code": v["TaxCode"]} for cid, v in source.items()
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
    # Keyed: not the bare digest; the full, never truncated, lower-case hex.
    assert expected[1]["email"] != hashlib.sha256(b"ann@example.com").hexdigest()
    assert all(len(v["email"]) == 64 for v in expected.values())
    # The rest of the policy still applies: the default-masked IBAN is masked.
    account = dbt_env.query("select iban from exigo_current.customer_accounts_current")[0]
    assert account["iban"] == "****3000"

    # Batch 2 delivers customer 1 again, unchanged: the same hash, so no new version.
    put_rows(
        dbt_env.source,
        "queue",
        "Customers",
        [
            default_row(
                "Customers", CustomerID=1, ModifiedDate=T0, PasswordHash=b"secret-hash",
                **source[1],
            )
        ],
    )  # fmt: skip
    res = dbt_env.fast_build(2, T0 + timedelta(hours=2), extra_vars=hashing, env=with_key)
    assert res.success, failures(res)
    versions = dbt_env.query(
        "select email from exigo_history.customers_history where customer_id = 1"
    )
    assert versions == [{"email": expected[1]["email"]}]

    # Without the key the batch stops, naming the variable, before anything merges.
    res = dbt_env.fast_build(
        3, T0 + timedelta(hours=3), extra_vars=hashing, env={"EXIGO_SYNC_HASH_KEY": ""}
    )
    assert not res.success
    assert "EXIGO_SYNC_HASH_KEY is not set" in " ".join(failures(res))
    assert dbt_env.query("select count(*) as n from exigo_history.customers_history") == [{"n": 2}]

    # The key is in no file dbt wrote: compiled and run SQL, artifacts, logs.
    for folder in (dbt_env.target_path, dbt_env.log_path):
        for path in folder.rglob("*"):
            if path.is_file():
                assert HASH_KEY.encode() not in path.read_bytes(), path


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


def test_s2_masked_value_feeds_the_row_hash_masked(dbt_env):
    """The trade-off, as intended: history holds what the warehouse shows, so a change that
    keeps a masked value's last four characters (a new IBAN ending in the same digits) is not a
    new version by itself; history cannot tell two secrets apart either. Exigo stamps
    ModifiedDate on every change, and that stamp is a kept column: the edit is a new version
    whose visible difference is the stamp."""
    load_batch_one(dbt_env)  # customer 1's account: IBAN DE89 3704 0044 0532 0130 00
    res = dbt_env.fast_build(1, T0 + timedelta(hours=1))
    assert res.success, failures(res)

    def account(iban: str, modified) -> dict:
        return default_row(
            "CustomerAccounts", CustomerID=1, ModifiedDate=modified, Iban=iban,
            CreditCardToken="tok_secret",
        )  # fmt: skip

    # The same stamp delivered again (the window's overlap) with another IBAN, same last 4.
    put_rows(dbt_env.source, "queue", "CustomerAccounts", [account("GB29NWBK60161331923000", T0)])
    res = dbt_env.fast_build(2, T0 + timedelta(hours=2))
    assert res.success, failures(res)
    history = "select iban, modified_date, row_hash from exigo_history.customer_accounts_history"
    [only] = dbt_env.query(history)
    assert only["iban"] == "****3000"

    # Exigo's own edit stamps the row: a new version, identical but for the stamp.
    edited = T0 + timedelta(hours=2, minutes=30)
    new_iban = account("FR7630006000011234567893000", edited)
    put_rows(dbt_env.source, "queue", "CustomerAccounts", [new_iban])
    res = dbt_env.fast_build(3, T0 + timedelta(hours=3))
    assert res.success, failures(res)
    versions = dbt_env.query(history + " order by valid_from")
    assert [(v["iban"], v["modified_date"]) for v in versions] == [
        ("****3000", T0),
        ("****3000", edited),
    ]
    assert versions[0]["row_hash"] != versions[1]["row_hash"]
