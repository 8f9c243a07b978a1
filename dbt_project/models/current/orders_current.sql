-- Current state of orders: one row per key ever seen (C1), deleted keys flagged.
{{ config(unique_key='order_id') }}
{{ exigo_current_state('orders') }}
