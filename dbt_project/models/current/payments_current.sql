-- Current state of payments: one row per key ever seen (C1), deleted keys flagged.
{{ config(unique_key='payment_id') }}
{{ exigo_current_state('payments') }}
