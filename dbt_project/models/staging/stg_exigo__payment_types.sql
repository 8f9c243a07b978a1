-- The company's payment types lookup, read whole every batch: typed, hashed, dated at the batch's refresh.
{{ exigo_stage_table('payment_types') }}
