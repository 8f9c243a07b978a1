-- SCD2 history of orders: one row per version (see macro exigo_scd2_history).
{{ exigo_scd2_history('orders') }}
