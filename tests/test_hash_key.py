"""S2 `hash` is keyed (exigo_sync.hash_key): where the key comes from, what a missing or weak key
says, and the HMAC pads a SQL Server warehouse computes with. The keyed hash in a batch:
tests/dbt/test_s2_policy.py."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from exigo_sync import hash_key

KEY = "0123456789abcdef0123456789abcdef-test"


def test_s2_no_key_needed_when_nothing_is_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hash_key.VARIABLE, raising=False)
    hash_key.provide([], None)


def test_s2_missing_key_names_the_columns_and_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(hash_key.VARIABLE, raising=False)
    with pytest.raises(hash_key.HashKeyError) as info:
        hash_key.provide(["Customers.Email"], None)
    message = str(info.value)
    assert message.startswith("Customers.Email: EXIGO_SYNC_HASH_KEY is not set")
    assert "EXIGO_SYNC_HASH_KEY_BLOCK" in message


def test_s2_weak_key_is_refused_without_printing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hash_key.VARIABLE, "short-key")
    with pytest.raises(hash_key.HashKeyError, match="shorter than 32 characters") as info:
        hash_key.provide(["Customers.Email"], None)
    assert "short-key" not in str(info.value)


def test_s2_key_from_a_prefect_secret_block(
    prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    # setenv first, so that monkeypatch restores "unset" at teardown: provide() writes the key
    # into os.environ, and a bare delenv of a missing variable records nothing to undo, leaking
    # the key into every later test of this worker.
    monkeypatch.setenv(hash_key.VARIABLE, "unset-at-teardown")
    monkeypatch.delenv(hash_key.VARIABLE)
    Secret(value=KEY).save("exigo-hash-key-test", overwrite=True)
    hash_key.provide(["Customers.Email"], "exigo-hash-key-test")
    assert hash_key.from_environment() == KEY.encode()
    monkeypatch.delenv(hash_key.VARIABLE)
    with pytest.raises(hash_key.HashKeyError, match="'no-such-block': the Prefect Secret block"):
        hash_key.provide(["Customers.Email"], "no-such-block")


@pytest.mark.parametrize("key", [KEY.encode(), b"k" * 64, b"long" * 40])
def test_s2_sql_server_formula_over_the_pads_is_hmac(key: bytes) -> None:
    """What sqlserver__exigo_keyed_hash computes, HASHBYTES('SHA2_256', opad +
    HASHBYTES('SHA2_256', ipad + value)) over the nvarchar's UTF-16LE bytes, is HMAC-SHA-256."""
    ipad, opad = hash_key.pads(key)
    assert len(ipad) == len(opad) == 64
    for text in ("123-45-6789", "zoë", ""):
        value = text.encode("utf-16-le")
        inner = hashlib.sha256(ipad + value).digest()
        assert hashlib.sha256(opad + inner).hexdigest() == (
            hmac.new(key, value, hashlib.sha256).hexdigest()
        )
