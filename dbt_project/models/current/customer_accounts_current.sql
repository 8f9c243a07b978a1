-- Current state of customer_accounts: one row per key ever seen (C1), deleted keys flagged.
{{ exigo_current_state('customer_accounts') }}
