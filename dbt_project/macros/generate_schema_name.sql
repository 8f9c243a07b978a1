{#- Custom schemas are used as-is (exigo_staging, exigo_history, ...), not prefixed with the
    target schema: the flow, the ledger and the analysts all address them by these fixed names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
