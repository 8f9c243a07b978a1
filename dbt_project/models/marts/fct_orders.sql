-- Live orders as they are now (deleted excluded), with status and type descriptions.
with orders as (
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
    o.order_id,
    o.customer_id,
    o.order_date,
    o.order_status_id,
    order_status.order_status_description as order_status,
    o.order_type_id,
    order_type.order_type_description as order_type,
    o.warehouse_id,
    o.ship_method_id,
    o.currency_code,
    o.total,
    o.sub_total,
    o.tax_total,
    o.shipping_total,
    o.discount_total,
    o.business_volume_total,
    o.commissionable_volume_total,
    o.is_commissionable,
    o.is_rma,
    o.return_order_id,
    o.auto_order_id,
    o.city,
    o.state,
    o.country,
    o.shipped_date,
    o.created_date,
    o.modified_date,
    o.valid_from,
    o.batch_id
from orders o
left join order_statuses order_status
    on order_status.order_status_id = o.order_status_id
left join order_types order_type
    on order_type.order_type_id = o.order_type_id
