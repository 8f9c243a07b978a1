-- Current state of the customer types lookup: one row per id ever seen (C1), removed ids flagged.
{{ config(unique_key='customer_type_id') }}
{{ exigo_current_state('customer_types') }}
