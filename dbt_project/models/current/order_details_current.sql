-- Current state of order_details: one row per key ever seen (C1), deleted keys flagged.
{{ config(unique_key=['order_id', 'order_line']) }}
{{ exigo_current_state('order_details') }}
