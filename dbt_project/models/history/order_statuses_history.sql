-- SCD2 history of the order statuses lookup (see macro exigo_scd2_history): a renamed value is a new
-- version, a removed value a deletion version, both at the refresh of the batch that saw it.
{{ exigo_scd2_history('order_statuses') }}
