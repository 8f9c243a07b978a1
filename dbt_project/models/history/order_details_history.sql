-- SCD2 history of order_details: one row per version (see macro exigo_scd2_history).
{{ exigo_scd2_history('order_details') }}
