{#- A value as unbounded text, stable for one platform (feeds the row hash, masks, messages).
    warehouse_type (optional) lets SQL Server pick a lossless CONVERT style. -#}
{% macro exigo_text(expr, warehouse_type=none) -%}
    {{ return(adapter.dispatch('exigo_text', 'exigo_sync')(expr, warehouse_type)) }}
{%- endmacro %}
{% macro default__exigo_text(expr, warehouse_type=none) -%}
    cast({{ expr }} as varchar)
{%- endmacro %}
{#- CONVERT's default styles lose precision: datetime drops seconds (style 121 keeps ms), money
    drops to 2 decimals (style 2 keeps 4), varbinary needs style 1 for hex. -#}
{% macro sqlserver__exigo_text(expr, warehouse_type=none) -%}
    {%- set base = (warehouse_type or '') | lower | replace(' ', '') -%}
    {%- set base = base.split('(')[0] -%}
    {%- if base in ('datetime', 'datetime2', 'smalldatetime', 'date') -%}
        convert(nvarchar(max), {{ expr }}, 121)
    {%- elif base in ('money', 'smallmoney') -%}
        convert(nvarchar(max), {{ expr }}, 2)
    {%- elif base in ('varbinary', 'binary') -%}
        convert(nvarchar(max), {{ expr }}, 1)
    {%- else -%}
        convert(nvarchar(max), {{ expr }})
    {%- endif -%}
{%- endmacro %}

{#- Character length that counts trailing spaces (T-SQL len() ignores them). -#}
{% macro exigo_length(expr) -%}
    {{ return(adapter.dispatch('exigo_length', 'exigo_sync')(expr)) }}
{%- endmacro %}
{% macro default__exigo_length(expr) -%}
    {{ dbt.length(expr) }}
{%- endmacro %}
{% macro sqlserver__exigo_length(expr) -%}
    (datalength({{ expr }}) / 2)
{%- endmacro %}

{#- Concatenation of text parts that must never be cut short (row hash input, masks, version
    ids). T-SQL CONCAT returns at most 8000 bytes unless an argument is a max type; on SQL Server
    the first argument is an explicit nvarchar(max), so that holds whatever the parts' types,
    provably from the SQL text alone. NULL parts: callers pass none (CONCAT would read them as ''). -#}
{% macro exigo_concat_text(parts) -%}
    {{ return(adapter.dispatch('exigo_concat_text', 'exigo_sync')(parts)) }}
{%- endmacro %}
{% macro default__exigo_concat_text(parts) -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}
{% macro sqlserver__exigo_concat_text(parts) -%}
    concat(cast('' as nvarchar(max)), {{ parts | join(', ') }})
{%- endmacro %}

{#- S2 mask: keep the last 4 characters ('****1234'); 4 characters or fewer become '****'. -#}
{% macro exigo_mask(expr) -%}
    case
        when {{ expr }} is null then null
        when {{ exigo_length(expr) }} <= 4 then '****'
        else {{ exigo_concat_text(["'****'", dbt.right(expr, 4)]) }}
    end
{%- endmacro %}
