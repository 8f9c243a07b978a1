-- Current state of order_details: one row per key ever seen (C1), deleted keys flagged.
{{ exigo_current_state('order_details') }}
