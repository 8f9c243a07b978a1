{#- The grain of a model without a batch_id (an aggregate: fct_daily_sales): at most one row per
    combination of `columns` (NULL counting as a value). It cannot be scoped to a batch's keys,
    so it runs in full checks only (exigo_full_check_only). Failing rows: the duplicated grain. -#}
{% test exigo_unique_grain(model, columns) %}
{{ config(tags=["exigo_full_check_only"]) }}
{%- set sql -%}
select {{ columns | join(', ') }}, count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endset -%}
{{ exigo_full_check_only(sql) }}
{% endtest %}
