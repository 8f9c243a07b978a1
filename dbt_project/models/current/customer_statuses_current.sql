-- Current state of the customer statuses lookup: one row per id ever seen (C1), removed ids flagged.
{{ exigo_current_state('customer_statuses') }}
