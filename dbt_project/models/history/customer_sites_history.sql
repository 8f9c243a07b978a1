-- SCD2 history of customer_sites: one row per version (see macro exigo_scd2_history).
{{ exigo_scd2_history('customer_sites') }}
