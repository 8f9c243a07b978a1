{#- Types: every DuckDB / SQL Server difference is an adapter.dispatch macro under macros/cross_db/
    (one concern per file) with a sqlserver__ implementation; dbt's own cross-database macros
    (dbt.concat, dbt.right, dbt.type_*, ...) are used where they exist and mean the same. -#}

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

{#- Type names as the warehouse reports them, for "is this column already the documented type?"
    Only a mismatch costs anything (a try-cast check query), so rough normalisation is enough. -#}
{% macro exigo_normalize_type(type_name) -%}
    {{ return(type_name | lower | replace('character varying', 'varchar') | replace(' ', '')) }}
{%- endmacro %}

{#- The types a table's warehouse columns (adapter Columns from get_columns_in_relation) are
    stored as, normalised: {lower column name: type}. DuckDB: the type DuckDB reports
    (`Column.data_type` would add dbt's default string size, `character varying(256)`, to every
    VARCHAR, and every text column would look changed and be probed, every batch). SQL Server:
    dbt's type with its size, which is what exigo_type keeps there, so a narrower documented
    size is still probed. -#}
{% macro exigo_stored_types(columns) -%}
    {%- set field = adapter.dispatch('exigo_stored_type_field', 'exigo_sync')() -%}
    {%- set types = {} -%}
    {%- for col in columns -%}{%- do types.update({col.name | lower: exigo_normalize_type(col[field])}) -%}{%- endfor -%}
    {{ return(types) }}
{%- endmacro %}

{% macro default__exigo_stored_type_field() -%}{{ return('dtype') }}{%- endmacro %}

{% macro sqlserver__exigo_stored_type_field() -%}{{ return('data_type') }}{%- endmacro %}

{#- Type of history_version_id ('<key>[|<key>]@<batch id>'). On SQL Server it is the clustered
    index key of history (exigo_table_indexes), and nvarchar(max) cannot be an index key
    (Msg 1919): 400 characters = 800 bytes, inside the 900-byte limit of a clustered key. The
    keys are ints, so a version id is a few dozen characters. -#}
{% macro exigo_version_id_type() -%}
    {{ return(adapter.dispatch('exigo_version_id_type', 'exigo_sync')()) }}
{%- endmacro %}
{% macro default__exigo_version_id_type() -%}
    {{ return(dbt.type_string()) }}
{%- endmacro %}
{% macro sqlserver__exigo_version_id_type() -%}
    {{ return('nvarchar(400)') }}
{%- endmacro %}

{#- Unbounded text. On SQL Server dbt.type_string() is VARCHAR(MAX) even with
    dbt_sqlserver_use_native_string_types (VARCHAR(8000) without it): not Unicode, so a masked
    value or a rejected row's JSON would lose every character outside the database code page
    (tests/dbt/test_project.py pins what the adapter returns). -#}
{% macro exigo_type_string() -%}
    {{ return(adapter.dispatch('exigo_type_string', 'exigo_sync')()) }}
{%- endmacro %}
{% macro default__exigo_type_string() -%}
    {{ return(dbt.type_string()) }}
{%- endmacro %}
{% macro sqlserver__exigo_type_string() -%}
    {{ return('nvarchar(max)') }}
{%- endmacro %}
