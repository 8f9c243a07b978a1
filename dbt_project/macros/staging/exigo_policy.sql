{#- S2: treatment of one source column: drop | mask | hash | keep (default keep). -#}
{% macro exigo_sensitive_policy(table, column) -%}
    {%- set policy = var('exigo_sensitive_columns', {}) -%}
    {%- set per_table = policy.get(table, {}) or {} -%}
    {%- for name, treatment in per_table.items() -%}
        {%- if name | lower == column | lower -%}
            {%- if treatment not in ('drop', 'mask', 'hash', 'keep') -%}
                {{ exceptions.raise_compiler_error("exigo_sync: exigo_sensitive_columns." ~ table ~ "." ~ name ~ " must be drop, mask, hash or keep, got " ~ treatment) }}
            {%- endif -%}
            {{ return(treatment) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return('keep') }}
{%- endmacro %}

{#- Masked and hashed values are text, whatever the source type. -#}
{% macro exigo_policy_type(treatment, warehouse_type) -%}
    {{ return(exigo_type_string() if treatment in ('mask', 'hash') else warehouse_type) }}
{%- endmacro %}
