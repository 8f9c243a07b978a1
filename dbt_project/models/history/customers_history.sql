-- SCD2 history of customers: one row per version (see macro exigo_scd2_history).
{{ exigo_scd2_history('customers') }}
