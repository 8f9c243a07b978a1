-- Current state of the payment types lookup: one row per id ever seen (C1), removed ids flagged.
{{ exigo_current_state('payment_types') }}
