-- One row per key changed in this batch: typed, S2 policy applied, hashed, de-duplicated.
{{ exigo_stage_table('customer_sites') }}
