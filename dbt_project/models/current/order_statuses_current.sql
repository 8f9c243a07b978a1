-- Current state of the order statuses lookup: one row per id ever seen (C1), removed ids flagged.
{{ exigo_current_state('order_statuses') }}
