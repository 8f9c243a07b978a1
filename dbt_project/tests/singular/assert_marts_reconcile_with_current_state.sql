{#- The marts add no row and lose none on their way from current state (a lookup with a duplicated
    id, or a bad join, would): counts and money per mart equal the current-state tables' own.
    Whole tables, so full checks only (exigo_full_check_only). Failing rows: the mart, what it
    holds, what current state holds. -#}
{{ config(tags=["exigo_full_check_only"]) }}
{%- set sql -%}
with checks as (
    select 'fct_orders rows' as check_name,
        (select count(*) from {{ ref('fct_orders') }}) as in_mart,
        (select count(*) from {{ ref('orders_current') }} where is_deleted = {{ exigo_false() }}) as in_current
    union all
    select 'fct_orders total',
        (select coalesce(sum(total), 0) from {{ ref('fct_orders') }}),
        (select coalesce(sum(total), 0) from {{ ref('orders_current') }} where is_deleted = {{ exigo_false() }})
    union all
    select 'fct_payments amount',
        (select coalesce(sum(amount), 0) from {{ ref('fct_payments') }}),
        (select coalesce(sum(amount), 0) from {{ ref('payments_current') }} where is_deleted = {{ exigo_false() }})
    union all
    select 'fct_order_lines price_total',
        (select coalesce(sum(price_total), 0) from {{ ref('fct_order_lines') }}),
        (select coalesce(sum(d.price_total), 0) from {{ ref('order_details_current') }} d
         inner join {{ ref('orders_current') }} o on o.order_id = d.order_id
         where d.is_deleted = {{ exigo_false() }} and o.is_deleted = {{ exigo_false() }})
    union all
    select 'dim_customers rows',
        (select count(*) from {{ ref('dim_customers') }}),
        (select count(*) from {{ ref('customers_current') }} where is_deleted = {{ exigo_false() }})
    union all
    select 'fct_order_lead_times rows',
        (select count(*) from {{ ref('fct_order_lead_times') }}),
        (select count(*) from {{ ref('orders_current') }})
)

select check_name, in_mart, in_current
from checks
where in_mart <> in_current
{%- endset -%}
{{ exigo_full_check_only(sql) }}
