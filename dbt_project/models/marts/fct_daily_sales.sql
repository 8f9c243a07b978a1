-- Booked sales per order day, ship-to country, currency and order type, returns netted
-- (definitions: fct_daily_sales.yml and the docs overview, "Definitions").
{%- set booked = var('exigo_booked_order_status_ids') %}

with orders as (
    select * from {{ ref('orders_current') }}
    where is_deleted = {{ exigo_false() }}
),

-- The order a return (RMA) order takes back names it in its ReturnOrderID: the return counts
-- against that order's type. One row per return order, whatever the data holds.
returned_order_types as (
    select return_order_id as order_id, min(order_type_id) as returned_order_type_id
    from {{ ref('orders_current') }}
    where return_order_id is not null
    group by return_order_id
),

booked_orders as (
    select
        cast(o.order_date as date) as sales_date,
        o.country,
        o.currency_code,
        case
            when o.is_rma = {{ exigo_true() }} then coalesce(r.returned_order_type_id, o.order_type_id)
            else o.order_type_id
        end as order_type_id,
        case when o.is_rma = {{ exigo_true() }} then 1 else 0 end as is_return,
        o.sub_total,
        o.total,
        o.business_volume_total,
        o.commissionable_volume_total
    from orders o
    left join returned_order_types r
        on r.order_id = o.order_id
    where o.order_status_id in ({{ booked | join(', ') }})
),

daily as (
    select
        sales_date,
        country,
        currency_code,
        order_type_id,
        -- Counts as a plain integer type: on DuckDB sum() of integers is a 128-bit HUGEINT, which
        -- many clients and BI tools cannot read.
        cast(sum(1 - is_return) as {{ exigo_type('bigint') }}) as orders,
        cast(sum(is_return) as {{ exigo_type('bigint') }}) as returns,
        sum(case when is_return = 0 then sub_total else 0 end) as gross_sub_total,
        sum(case when is_return = 1 then abs(sub_total) else 0 end) as returned_sub_total,
        sum(case when is_return = 0 then total else 0 end) as gross_total,
        sum(case when is_return = 1 then abs(total) else 0 end) as returned_total,
        sum(case when is_return = 0 then business_volume_total else -abs(business_volume_total) end)
            as net_business_volume,
        sum(case when is_return = 0 then commissionable_volume_total else -abs(commissionable_volume_total) end)
            as net_commissionable_volume
    from booked_orders
    group by sales_date, country, currency_code, order_type_id
)

select
    d.sales_date,
    d.country,
    d.currency_code,
    d.order_type_id,
    order_type.order_type_description as order_type,
    d.orders,
    d.returns,
    d.gross_sub_total,
    d.returned_sub_total,
    d.gross_sub_total - d.returned_sub_total as net_sub_total,
    d.gross_total,
    d.returned_total,
    d.gross_total - d.returned_total as net_total,
    d.net_business_volume,
    d.net_commissionable_volume
from daily d
left join {{ ref('order_types_current') }} order_type
    on order_type.order_type_id = d.order_type_id
