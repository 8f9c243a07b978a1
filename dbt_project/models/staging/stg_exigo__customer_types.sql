-- The company's customer types lookup, read whole every batch: typed, hashed, dated at the batch's refresh.
{{ exigo_stage_table('customer_types') }}
