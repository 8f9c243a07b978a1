-- One row per status an order entered, with the time it spent there and the status names
-- (int_order_status_changes, kept up to date from each batch's changed orders).
with changes as (
    select * from {{ ref('int_order_status_changes') }}
),

order_statuses as (
    select * from {{ ref('order_statuses_current') }}
)

select
    c.order_id,
    c.status_seq,
    c.previous_order_status_id,
    previous_status.order_status_description as previous_order_status,
    c.order_status_id,
    status.order_status_description as order_status,
    c.entered_at,
    c.left_at,
    c.seconds_in_status,
    c.ended_by_deletion,
    c.is_current_status,
    c.batch_id
from changes c
left join order_statuses status
    on status.order_status_id = c.order_status_id
left join order_statuses previous_status
    on previous_status.order_status_id = c.previous_order_status_id
