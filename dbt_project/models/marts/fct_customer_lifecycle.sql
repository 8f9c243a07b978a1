-- One row per status a customer entered (customers_history via int_customer_status_changes),
-- classified as activation, termination, status change or first observation (statuses from
-- vars exigo_active_customer_status_ids and exigo_terminated_customer_status_ids).
{%- set active = var('exigo_active_customer_status_ids') %}
{%- set terminated = var('exigo_terminated_customer_status_ids') %}

with changes as (
    select * from {{ ref('int_customer_status_changes') }}
),

customer_statuses as (
    select * from {{ ref('customer_statuses_current') }}
)

select
    c.customer_id,
    c.status_seq,
    cast(case
        when c.customer_status_id in ({{ terminated | join(', ') }}) then 'termination'
        when c.customer_status_id in ({{ active | join(', ') }})
         and (c.status_seq = 1 or c.previous_customer_status_id is null
              or c.previous_customer_status_id not in ({{ active | join(', ') }})) then 'activation'
        when c.status_seq = 1 then 'first_seen'
        else 'status_change'
    end as {{ exigo_type_string() }}) as event_type,
    c.entered_at as event_at,
    c.previous_customer_status_id,
    previous_status.customer_status_description as previous_customer_status,
    c.customer_status_id,
    status.customer_status_description as customer_status,
    c.left_at,
    c.seconds_in_status,
    c.ended_by_deletion,
    c.is_current_status,
    case when c.status_seq = 1 then {{ exigo_true() }} else {{ exigo_false() }} end
        as is_first_observation,
    cur.customer_type_id,
    cur.created_date,
    c.batch_id
from changes c
inner join {{ ref('customers_current') }} cur
    on cur.customer_id = c.customer_id
left join customer_statuses status
    on status.customer_status_id = c.customer_status_id
left join customer_statuses previous_status
    on previous_status.customer_status_id = c.previous_customer_status_id
