"""dbt-duckdb plugin (profile: `plugins: [{module: exigo_sync.dbt_duckdb_plugin}]`): the keyed hash
of S2's `hash` treatment as the DuckDB function `exigo_hmac_sha256(varchar) -> varchar`, the
lower-case hex HMAC-SHA-256 of the text's UTF-8 bytes under the key in dbt's environment
(exigo_sync.hash_key). The key never enters SQL text, so it is in no compiled file and no log; a
missing key fails the model that calls the function, naming the variable. NULL stays NULL."""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from exigo_sync import hash_key

FUNCTION = "exigo_hmac_sha256"


def _hmac_column(values: Any) -> Any:
    import pyarrow as pa

    key = hash_key.from_environment()
    return pa.array(
        [
            None if v is None else hash_key.hmac_sha256_hex(key, v.encode("utf-8"))
            for v in values.to_pylist()
        ],
        type=pa.string(),
    )


class Plugin(BasePlugin):
    def configure_connection(self, conn: Any) -> None:
        conn.create_function(
            FUNCTION, _hmac_column, ["VARCHAR"], "VARCHAR", type="arrow",
            null_handling="special", side_effects=False,
        )  # fmt: skip
