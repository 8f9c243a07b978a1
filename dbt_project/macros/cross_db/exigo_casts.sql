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

{#- B3 probe predicate: the non-NULL value expr would not survive cast(expr as warehouse_type).
    The staging model then casts with a plain cast, which fails loudly on a value this misses,
    except where the engine's cast is silently lossy by design: T-SQL's cast to a shorter
    (n)(var)char(n) truncates without an error (DuckDB's varchar has no length), so on SQL Server
    a value longer than n characters counts as not castable. Lengths in UTF-16 code units, the
    unit of nvarchar(n); trailing spaces count (datalength, not len). -#}
{% macro exigo_cast_loses_value(expr, warehouse_type) -%}
    {{ return(adapter.dispatch('exigo_cast_loses_value', 'exigo_sync')(expr, warehouse_type)) }}
{%- endmacro %}
{% macro default__exigo_cast_loses_value(expr, warehouse_type) -%}
    {{ exigo_try_cast(expr, warehouse_type) }} is null
{%- endmacro %}
{% macro sqlserver__exigo_cast_loses_value(expr, warehouse_type) -%}
    {%- set bounded = modules.re.match('^n?(var)?char\\((\\d+)\\)$', warehouse_type | lower | replace(' ', '')) -%}
    {%- if bounded -%}
        ({{ exigo_try_cast(expr, warehouse_type) }} is null or datalength(cast({{ expr }} as nvarchar(max))) / 2 > {{ bounded.group(2) }})
    {%- else -%}
        {{ exigo_try_cast(expr, warehouse_type) }} is null
    {%- endif -%}
{%- endmacro %}
