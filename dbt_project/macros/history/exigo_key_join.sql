{#- `l.k1 = r.k1 and l.k2 = r.k2`: the join of two relations on an entity's (snake_case) keys. -#}
{% macro exigo_key_join(keys, left, right) -%}
    {%- set parts = [] -%}
    {%- for k in keys -%}{%- do parts.append(left ~ '.' ~ k ~ ' = ' ~ right ~ '.' ~ k) -%}{%- endfor -%}
    {{ return(parts | join(' and ')) }}
{%- endmacro %}
