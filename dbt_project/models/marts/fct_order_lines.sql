-- Live order lines of live orders (removed lines and lines of deleted orders excluded), with the
-- order's status and type names and the currency of the amounts.
with lines as (
    select * from {{ ref('order_details_current') }}
    where is_deleted = {{ exigo_false() }}
),

-- fct_orders: live orders with their status and type names, so a line's order attributes
-- come from the one place that defines them.
orders as (
    select * from {{ ref('fct_orders') }}
)

select
    d.order_id,
    d.order_line,
    o.customer_id,
    o.order_date,
    o.order_status_id,
    o.order_status,
    o.order_type_id,
    o.order_type,
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
