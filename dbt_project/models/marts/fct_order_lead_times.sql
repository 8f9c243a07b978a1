-- One row per order ever seen: when the warehouse first saw it Accepted and Shipped, and the
-- accepted -> shipped lead time (statuses from vars exigo_accepted_order_status_id and
-- exigo_shipped_order_status_id).
{%- set accepted = var('exigo_accepted_order_status_id') %}
{%- set shipped = var('exigo_shipped_order_status_id') %}

with changes as (
    select * from {{ ref('int_order_status_changes') }}
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
    o.order_status_id,
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
