{#- fct_daily_sales against orders_current, computed the plain way: the booked (status in var
    exigo_booked_order_status_ids) live orders that are not returns, and the booked returns
    (IsRMA), counted and summed over every day, country, currency and type. A return attributed
    to the wrong row, dropped or counted twice breaks it. Full checks only. -#}
{{ config(tags=["exigo_full_check_only"]) }}
{%- set booked = var('exigo_booked_order_status_ids') | join(', ') -%}
{%- set sql -%}
with mart as (
    select
        sum(orders) as orders,
        sum(returns) as returns,
        coalesce(sum(gross_sub_total), 0) as gross_sub_total,
        coalesce(sum(returned_sub_total), 0) as returned_sub_total,
        coalesce(sum(net_total), 0) as net_total
    from {{ ref('fct_daily_sales') }}
),

plain as (
    select
        sum(case when is_rma = {{ exigo_false() }} then 1 else 0 end) as orders,
        sum(case when is_rma = {{ exigo_true() }} then 1 else 0 end) as returns,
        coalesce(sum(case when is_rma = {{ exigo_false() }} then sub_total else 0 end), 0) as gross_sub_total,
        coalesce(sum(case when is_rma = {{ exigo_true() }} then abs(sub_total) else 0 end), 0) as returned_sub_total,
        coalesce(sum(case when is_rma = {{ exigo_true() }} then -abs(total) else total end), 0) as net_total
    from {{ ref('orders_current') }}
    where is_deleted = {{ exigo_false() }}
      and order_status_id in ({{ booked }})
)

select
    mart.orders as mart_orders, plain.orders as plain_orders,
    mart.returns as mart_returns, plain.returns as plain_returns,
    mart.gross_sub_total as mart_gross_sub_total, plain.gross_sub_total as plain_gross_sub_total,
    mart.returned_sub_total as mart_returned_sub_total, plain.returned_sub_total as plain_returned_sub_total,
    mart.net_total as mart_net_total, plain.net_total as plain_net_total
from mart
cross join plain
where coalesce(mart.orders, 0) <> coalesce(plain.orders, 0)
   or coalesce(mart.returns, 0) <> coalesce(plain.returns, 0)
   or mart.gross_sub_total <> plain.gross_sub_total
   or mart.returned_sub_total <> plain.returned_sub_total
   or mart.net_total <> plain.net_total
{%- endset -%}
{{ exigo_full_check_only(sql) }}
