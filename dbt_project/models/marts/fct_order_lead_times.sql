-- One row per order ever seen: when the warehouse first saw it Accepted and Shipped, and the
-- accepted -> shipped lead time (statuses from vars exigo_accepted_order_status_id and
-- exigo_shipped_order_status_id), with the type and status names of the order as they are now.
{%- set accepted = var('exigo_accepted_order_status_id') %}
{%- set shipped = var('exigo_shipped_order_status_id') %}

with changes as (
    select * from {{ ref('int_order_status_changes') }}
),

order_statuses as (
    select * from {{ ref('order_statuses_current') }}
),

order_types as (
    select * from {{ ref('order_types_current') }}
),

milestones as (
    select
        order_id,
        min(entered_at) as first_seen_at,
        min(case when order_status_id = {{ accepted }} then entered_at end) as accepted_at,
        min(case when order_status_id = {{ shipped }} then entered_at end) as shipped_at,
        max(batch_id) as batch_id
    from changes
    group by order_id
)

select
    m.order_id,
    o.customer_id,
    o.order_date,
    o.order_type_id,
    order_type.order_type_description as order_type,
    o.order_status_id,
    order_status.order_status_description as order_status,
    o.is_deleted,
    m.first_seen_at,
    m.accepted_at,
    m.shipped_at,
    o.shipped_date,
    case
        when m.accepted_at is not null and m.shipped_at >= m.accepted_at
        then {{ dbt.datediff('m.accepted_at', 'm.shipped_at', 'second') }}
    end as accepted_to_shipped_seconds,
    m.batch_id
from milestones m
inner join {{ ref('orders_current') }} o
    on o.order_id = m.order_id
left join order_types order_type
    on order_type.order_type_id = o.order_type_id
left join order_statuses order_status
    on order_status.order_status_id = o.order_status_id
