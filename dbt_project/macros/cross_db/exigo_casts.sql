{#- Cast that yields NULL instead of failing; used only to FIND uncastable values (B3). -#}
{% macro exigo_try_cast(expr, warehouse_type) -%}
    {{ return(adapter.dispatch('exigo_try_cast', 'exigo_sync')(expr, warehouse_type)) }}
{%- endmacro %}
{% macro default__exigo_try_cast(expr, warehouse_type) -%}
    try_cast({{ expr }} as {{ warehouse_type }})
{%- endmacro %}
{% macro sqlserver__exigo_try_cast(expr, warehouse_type) -%}
    {{ dbt.safe_cast(expr, warehouse_type) }}
{%- endmacro %}
