{#- A validated ISO timestamp literal typed like the source's datetime columns. -#}
{% macro exigo_timestamp_literal(iso_text) -%}
    {{ return(adapter.dispatch('exigo_timestamp_literal', 'exigo_sync')(iso_text)) }}
{%- endmacro %}
{% macro default__exigo_timestamp_literal(iso_text) -%}
    cast('{{ iso_text }}' as timestamp)
{%- endmacro %}
{#- datetime2 first: datetime rejects more than 3 fractional digits in a literal. -#}
{% macro sqlserver__exigo_timestamp_literal(iso_text) -%}
    cast(convert(datetime2, '{{ iso_text }}', 126) as datetime)
{%- endmacro %}

{#- The next instant the history's version-time type can hold after `expr` (H3: a version stamped
    no later than the one it replaces starts just after it, so intervals stay ordered). -#}
{% macro exigo_next_instant(expr) -%}
    {{ return(adapter.dispatch('exigo_next_instant', 'exigo_sync')(expr)) }}
{%- endmacro %}
{% macro default__exigo_next_instant(expr) -%}
    ({{ expr }} + interval 1 microsecond)
{%- endmacro %}
{#- SQL Server keeps the source's `datetime` (1/300 s grid): 3 ms always lands on a later tick. -#}
{% macro sqlserver__exigo_next_instant(expr) -%}
    dateadd(millisecond, 3, {{ expr }})
{%- endmacro %}

{#- `expr` plus `hours` hours (dbt's cross-database dateadd). -#}
{% macro exigo_add_hours(expr, hours) -%}
    {{ return(dbt.dateadd('hour', hours, expr)) }}
{%- endmacro %}
