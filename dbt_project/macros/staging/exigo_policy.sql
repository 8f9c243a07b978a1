{#- S2: the treatment of each of one table's columns: drop | mask | hash | keep (a column the
    policy does not name: keep). Checked once per table: {lower column name: treatment}. A plan
    reads it once per table rather than once per column (every macro call costs dbt time on
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
