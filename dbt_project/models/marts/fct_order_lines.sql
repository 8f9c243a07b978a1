-- Live order lines of live orders (removed lines and lines of deleted orders excluded), with the
-- order's status and type names and the currency of the amounts.
with lines as (
    select * from {{ ref('order_details_current') }}
    where is_deleted = {{ exigo_false() }}
),

orders as (
    select * from {{ ref('orders_current') }}
    where is_deleted = {{ exigo_false() }}
),

order_statuses as (
    select * from {{ ref('order_statuses_current') }}
),

order_types as (
    select * from {{ ref('order_types_current') }}
)

select
    d.order_id,
    d.order_line,
    o.customer_id,
    o.order_date,
    o.order_status_id,
    order_status.order_status_description as order_status,
    o.order_type_id,
    order_type.order_type_description as order_type,
    o.currency_code,
    d.item_id,
    d.item_code,
    d.item_description,
    d.quantity,
    d.price_each,
    d.price_total,
    d.tax,
    d.business_volume,
    d.commissionable_volume,
    d.valid_from,
    d.batch_id
from lines d
inner join orders o
    on o.order_id = d.order_id
left join order_statuses order_status
    on order_status.order_status_id = o.order_status_id
left join order_types order_type
    on order_type.order_type_id = o.order_type_id
