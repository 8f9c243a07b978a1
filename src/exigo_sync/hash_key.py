"""S2's `hash` treatment is keyed: HMAC-SHA-256 with a secret only this pipeline holds, so a hashed
tax code or account number cannot be reversed by hashing every candidate (a 9-digit number has
only 10^9). Equal values still hash equal in every batch, so a hashed column joins and compares.

The key comes from the environment (`EXIGO_SYNC_HASH_KEY`) or a Prefect Secret block
(`EXIGO_SYNC_HASH_KEY_BLOCK` names it; the flow puts its value into this process's environment,
which dbt's process inherits, as the profile's Secret placeholders are). It is needed only when
the policy hashes a column, and it never appears in SQL text, dbt's compiled files or logs:
- DuckDB: the dbt-duckdb plugin `exigo_sync.dbt_duckdb_plugin` registers the function
  `exigo_hmac_sha256(varchar)`, which reads the key from dbt's environment when it runs;
- SQL Server: the flow stores the key's HMAC pads with bound parameters in a table only the
  pipeline's login reads, for the length of dbt's run (exigo_sync.warehouse.hash_keys), and the
  macro `exigo_keyed_hash` computes HMAC with HASHBYTES over them.
Rotating the key changes every hashed value (one new version per row holding one).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

VARIABLE = "EXIGO_SYNC_HASH_KEY"
BLOCK_VARIABLE = "EXIGO_SYNC_HASH_KEY_BLOCK"
MIN_CHARS = 32
_BLOCK_SIZE = 64  # SHA-256's


class HashKeyError(RuntimeError):
    """No usable key; the message names the variable, never a value."""


def _checked(value: str, origin: str) -> bytes:
    if len(value) < MIN_CHARS:
        raise HashKeyError(
            f"{origin} is shorter than {MIN_CHARS} characters: use a random key, e.g. "
            "`openssl rand -hex 32` (S2)"
        )
    return value.encode("utf-8")


def from_environment() -> bytes:
    """The key, from this process's environment; HashKeyError naming the variable if it is
    missing or too short."""
    value = os.environ.get(VARIABLE, "")
    if not value:
        raise HashKeyError(
            f"{VARIABLE} is not set: the sensitive-column policy hashes a column, and `hash` is "
            f"keyed (HMAC-SHA-256); set {VARIABLE} (at least {MIN_CHARS} characters, e.g. "
            f"`openssl rand -hex 32`) or {BLOCK_VARIABLE} (a Prefect Secret block's name) (S2)"
        )
    return _checked(value, VARIABLE)


def provide(hashed: Sequence[str], block: str | None) -> None:
    """Make sure dbt's process will find the key when the policy hashes a column (`hashed`:
    `Table.Column` names): from the environment as it is, else from the Prefect Secret block
    `block`, whose value goes into this process's environment. Raises naming the variables
    when neither gives a key. Nothing to do when nothing is hashed."""
    if not hashed:
        return
    if os.environ.get(VARIABLE) or not block:
        try:
            from_environment()
        except HashKeyError as exc:
            raise HashKeyError(f"{', '.join(hashed)}: {exc}") from None
        return
    from prefect.blocks.system import Secret

    try:
        value = str(Secret.load(block).get())
    except Exception as exc:
        raise HashKeyError(
            f"{BLOCK_VARIABLE}={block!r}: the Prefect Secret block could not be read "
            f"({type(exc).__name__}) (S2)"
        ) from None
    _checked(value, f"the Prefect Secret block {block!r}")
    os.environ[VARIABLE] = value


def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104): HMAC(K, m) =
    SHA-256(opad || SHA-256(ipad || m)). What a SQL Server warehouse keeps for dbt's run."""
    if len(key) > _BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK_SIZE, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
