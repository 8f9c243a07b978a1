{#- W4: a version time more than exigo_future_tolerance_hours after this batch's refresh (a
    9999-12-31 sentinel, a clock run ahead) is capped at the refresh: the row loads, true from
    the moment a batch saw it, and it never pins its key (a later real version is dated after it,
    H5). The row's own ModifiedDate column keeps the stamp as it was. -#}
{% macro exigo_capped_version_time(expr) -%}
    {%- set refreshed = exigo_timestamp_literal(exigo_batch_refreshed_at()) -%}
    {%- set limit = exigo_add_hours(refreshed, var('exigo_future_tolerance_hours', 24) | float) -%}
    case when {{ expr }} > {{ limit }} then {{ refreshed }} else {{ expr }} end
{%- endmacro %}
