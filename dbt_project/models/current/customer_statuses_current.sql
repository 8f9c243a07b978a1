-- Current state of the customer statuses lookup: one row per id ever seen (C1), removed ids flagged.
{{ config(unique_key='customer_status_id') }}
{{ exigo_current_state('customer_statuses') }}
