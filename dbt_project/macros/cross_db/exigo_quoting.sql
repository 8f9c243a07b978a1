{#- Names and text from outside the project (a column Exigo added, a JSON key, a file path) reach
    SQL only through these two macros. dbt's adapter.quote wraps a name without escaping the
    quote character inside it, so a column named `x"; drop table t; --` would end the identifier
    and run the rest: here the quote character is doubled (`]` on SQL Server), which keeps any
    name one identifier (S2 / S1; tests/dbt/test_s2_policy.py and the flow's hostile-name test). -#}
{% macro exigo_quote(name) -%}
    {{ return(adapter.dispatch('exigo_quote', 'exigo_sync')(name | string)) }}
{%- endmacro %}
{% macro default__exigo_quote(name) -%}
    {{ return('"' ~ name.replace('"', '""') ~ '"') }}
{%- endmacro %}
{% macro sqlserver__exigo_quote(name) -%}
    {{ return('[' ~ name.replace(']', ']]') ~ ']') }}
{%- endmacro %}

{#- A string literal holding `text` as is (a `'` inside doubled). SQL Server: N'...' (Unicode). -#}
{% macro exigo_string_literal(text) -%}
    {{ return(adapter.dispatch('exigo_string_literal', 'exigo_sync')(text | string)) }}
{%- endmacro %}
{% macro default__exigo_string_literal(text) -%}
    {{ return("'" ~ text.replace("'", "''") ~ "'") }}
{%- endmacro %}
{% macro sqlserver__exigo_string_literal(text) -%}
    {{ return("N'" ~ text.replace("'", "''") ~ "'") }}
{%- endmacro %}
