-- Current state of the order statuses lookup: one row per id ever seen (C1), removed ids flagged.
{{ config(unique_key='order_status_id') }}
{{ exigo_current_state('order_statuses') }}
