{#- Every DuckDB / SQL Server difference lives here, behind adapter.dispatch. dbt's own
    cross-database macros (dbt.concat, dbt.right, dbt.type_*, ...) are used where they exist. -#}

{#- SQL Server type (as documented in the sources YAML) -> the warehouse type. -#}
{% macro exigo_type(sql_server_type) -%}
    {{ return(adapter.dispatch('exigo_type', 'exigo_sync')(sql_server_type)) }}
{%- endmacro %}

{% macro default__exigo_type(sql_server_type) -%}
    {%- set t = sql_server_type | lower | replace(' ', '') -%}
    {%- set base = t.split('(')[0] -%}
    {%- if base in ('int', 'integer') -%}{{ return('integer') }}
    {%- elif base == 'bigint' -%}{{ return('bigint') }}
    {%- elif base in ('smallint', 'tinyint') -%}{{ return('smallint') }}
    {%- elif base == 'bit' -%}{{ return('boolean') }}
    {%- elif base in ('nvarchar', 'varchar', 'nchar', 'char', 'ntext', 'text', 'sysname') -%}{{ return('varchar') }}
    {%- elif base in ('datetime', 'datetime2', 'smalldatetime') -%}{{ return('timestamp') }}
    {%- elif base == 'date' -%}{{ return('date') }}
    {%- elif base in ('money', 'smallmoney') -%}{{ return('decimal(19,4)') }}
    {%- elif base in ('decimal', 'numeric') -%}{{ return(t | replace('numeric', 'decimal')) }}
    {%- elif base in ('float', 'real') -%}{{ return('double') }}
    {%- elif base in ('varbinary', 'binary', 'image') -%}{{ return('blob') }}
    {%- elif base == 'uniqueidentifier' -%}{{ return('uuid') }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("exigo_sync: no warehouse type for SQL Server type '" ~ sql_server_type ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- On SQL Server the warehouse keeps the source's own types. -#}
{% macro sqlserver__exigo_type(sql_server_type) -%}
    {{ return(sql_server_type | lower | replace(' ', '')) }}
{%- endmacro %}

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

{#- Full-length SHA-256, lower-case hex, of a text expression. On SQL Server hashbytes over
    nvarchar(max) has no 8000-byte input limit since 2016. -#}
{% macro exigo_hash(text_expr) -%}
    {{ return(adapter.dispatch('exigo_hash', 'exigo_sync')(text_expr)) }}
{%- endmacro %}
{% macro default__exigo_hash(text_expr) -%}
    sha256({{ text_expr }})
{%- endmacro %}
{% macro sqlserver__exigo_hash(text_expr) -%}
    lower(convert(varchar(64), hashbytes('SHA2_256', cast({{ text_expr }} as nvarchar(max))), 2))
{%- endmacro %}

{#- JSON object text of the named columns (column_pairs: list of [json_key, sql_expr]). -#}
{% macro exigo_row_to_json(column_pairs) -%}
    {{ return(adapter.dispatch('exigo_row_to_json', 'exigo_sync')(column_pairs)) }}
{%- endmacro %}
{% macro default__exigo_row_to_json(column_pairs) -%}
    cast(json_object(
    {%- for pair in column_pairs %}
        '{{ pair[0] }}', {{ pair[1] }}{{ "," if not loop.last }}
    {%- endfor %}
    ) as varchar)
{%- endmacro %}
{#- FOR JSON in a correlated sub-select works on SQL Server 2016+ (JSON_OBJECT needs 2022). -#}
{% macro sqlserver__exigo_row_to_json(column_pairs) -%}
    (select
    {%- for pair in column_pairs %}
        {{ pair[1] }} as [{{ pair[0] }}]{{ "," if not loop.last }}
    {%- endfor %}
    for json path, without_array_wrapper, include_null_values)
{%- endmacro %}

{% macro exigo_true() -%}
    {{ return(adapter.dispatch('exigo_true', 'exigo_sync')()) }}
{%- endmacro %}
{% macro default__exigo_true() -%}true{%- endmacro %}
{% macro sqlserver__exigo_true() -%}cast(1 as bit){%- endmacro %}

{% macro exigo_false() -%}
    {{ return(adapter.dispatch('exigo_false', 'exigo_sync')()) }}
{%- endmacro %}
{% macro default__exigo_false() -%}false{%- endmacro %}
{% macro sqlserver__exigo_false() -%}cast(0 as bit){%- endmacro %}

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

{#- S2 mask: keep the last 4 characters ('****1234'); 4 characters or fewer become '****'. -#}
{% macro exigo_mask(expr) -%}
    case
        when {{ expr }} is null then null
        when {{ exigo_length(expr) }} <= 4 then '****'
        else {{ dbt.concat(["'****'", dbt.right(expr, 4)]) }}
    end
{%- endmacro %}

{#- Type names as the warehouse reports them, for "is this column already the documented type?"
    Only a mismatch costs anything (a try-cast check query), so rough normalisation is enough. -#}
{% macro exigo_normalize_type(type_name) -%}
    {{ return(type_name | lower | replace(' ', '') | replace('character varying', 'varchar')) }}
{%- endmacro %}
