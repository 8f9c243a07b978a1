"""How Exigo names become warehouse names: the Python twin of the dbt macros
`exigo_snake_case` + `exigo_column_name` (dbt_project/macros/exigo_staging.sql).

One place, used by the YAML generator, the ledger and the tests, so they cannot drift apart.
"""

from __future__ import annotations

import re

# Columns exigo-sync adds to staging / history / current. A source column that would clash with
# one of them (Orders.BatchID -> batch_id) is carried as `source_<name>`.
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {
        "batch_id",
        "version_time",
        "row_hash",
        "source_row_count",
        "is_tie_broken",
        "valid_from",
        "valid_to",
        "is_current",
        "is_deleted",
        "deleted_at",
        "history_version_id",
        "reject_reason",
        "raw_row",
        "transition",
    }
)


def snake_case(name: str) -> str:
    """CustomerID -> customer_id, MainAddress1 -> main_address1, IsRMA -> is_rma."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^A-Za-z0-9_]+", "_", s)
    return re.sub(r"_+", "_", s).strip("_").lower()


def column_name(source_column: str) -> str:
    """The warehouse name of a source column (snake_case; reserved names get `source_`)."""
    s = snake_case(source_column)
    return "source_" + s if s in RESERVED_COLUMNS else s


def entity_name(queue_table: str) -> str:
    """queue.OrderDetails -> order_details: the dbt entity of a queue table."""
    return snake_case(queue_table)
