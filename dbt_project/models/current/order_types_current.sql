-- Current state of the order types lookup: one row per id ever seen (C1), removed ids flagged.
{{ exigo_current_state('order_types') }}
