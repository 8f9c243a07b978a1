-- Current state of customer_accounts: one row per key ever seen (C1), deleted keys flagged.
{{ config(unique_key='customer_id') }}
{{ exigo_current_state('customer_accounts') }}
