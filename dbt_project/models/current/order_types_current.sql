-- Current state of the order types lookup: one row per id ever seen (C1), removed ids flagged.
{{ config(unique_key='order_type_id') }}
{{ exigo_current_state('order_types') }}
