-- Live orders as they are now (deleted excluded), with status and type descriptions.
select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.order_status_id,
    order_status.{{ adapter.quote('OrderStatusDescription') }} as order_status,
    o.order_type_id,
    order_type.{{ adapter.quote('OrderTypeDescription') }} as order_type,
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
from {{ ref('orders_current') }} o
left join {{ source('exigo_dbo', 'OrderStatuses') }} order_status
    on order_status.{{ adapter.quote('OrderStatusID') }} = o.order_status_id
left join {{ source('exigo_dbo', 'OrderTypes') }} order_type
    on order_type.{{ adapter.quote('OrderTypeID') }} = o.order_type_id
where o.is_deleted = {{ exigo_false() }}
