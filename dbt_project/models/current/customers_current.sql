-- Current state of customers: one row per key ever seen (C1), deleted keys flagged.
{{ exigo_current_state('customers') }}
