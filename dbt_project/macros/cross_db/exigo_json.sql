{#- JSON object text of the named columns (column_pairs: list of [json_key, sql_expr]). The keys
    are source column names: quoted as literals / identifiers (exigo_quoting), never pasted. -#}
{% macro exigo_row_to_json(column_pairs) -%}
    {{ return(adapter.dispatch('exigo_row_to_json', 'exigo_sync')(column_pairs)) }}
{%- endmacro %}
{% macro default__exigo_row_to_json(column_pairs) -%}
    cast(json_object(
    {%- for pair in column_pairs %}
        {{ exigo_string_literal(pair[0]) }}, {{ pair[1] }}{{ "," if not loop.last }}
    {%- endfor %}
    ) as varchar)
{%- endmacro %}
{#- FOR JSON in a correlated sub-select works on SQL Server 2016+ (JSON_OBJECT needs 2022). -#}
{% macro sqlserver__exigo_row_to_json(column_pairs) -%}
    (select
    {%- for pair in column_pairs %}
        {{ pair[1] }} as {{ exigo_quote(pair[0]) }}{{ "," if not loop.last }}
    {%- endfor %}
    for json path, without_array_wrapper, include_null_values)
{%- endmacro %}
