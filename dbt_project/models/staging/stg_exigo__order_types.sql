-- The company's order types lookup, read whole every batch: typed, hashed, dated at the batch's refresh.
{{ exigo_stage_table('order_types') }}
