{#- S2: treatment of one source column: drop | mask | hash | keep (default keep). -#}
{% macro exigo_sensitive_policy(table, column) -%}
    {{ return(exigo_table_policy(table).get(column | lower, 'keep')) }}
{%- endmacro %}

{#- The S2 treatments of one table's columns, checked once: {lower column name: treatment}. A
    plan reads it once per table rather than once per column (every macro call costs dbt time on
    every node of every batch). -#}
{% macro exigo_table_policy(table) -%}
    {%- set per_table = var('exigo_sensitive_columns', {}).get(table, {}) or {} -%}
    {%- set treatments = {} -%}
    {%- for name, treatment in per_table.items() -%}
        {%- if treatment not in ('drop', 'mask', 'hash', 'keep') -%}
            {{ exceptions.raise_compiler_error("exigo_sync: exigo_sensitive_columns." ~ table ~ "." ~ name ~ " must be drop, mask, hash or keep, got " ~ treatment) }}
        {%- endif -%}
        {%- if (name | lower) not in treatments -%}{%- do treatments.update({name | lower: treatment}) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(treatments) }}
{%- endmacro %}
