-- Live order lines of live orders (removed lines and lines of deleted orders excluded).
select
    d.order_id,
    d.order_line,
    o.customer_id,
    o.order_date,
    o.order_status_id,
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
from {{ ref('order_details_current') }} d
inner join {{ ref('orders_current') }} o
    on o.order_id = d.order_id
   and o.is_deleted = {{ exigo_false() }}
where d.is_deleted = {{ exigo_false() }}
