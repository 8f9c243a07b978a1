{#- Everything the SCD2 history of one entity needs, built once (as dbt's snapshot strategy dict
    is): keys, data columns, where its rows come from, and which kinds of deletion apply.

    deletions:
      by_parent : a live line of an order in this batch that the batch does not carry was removed
                  (a changed order arrives with ALL its lines), dated at the order's version time;
      by_sweep  : a live key missing from the source's keys (and from this batch) was deleted at
                  the source, dated at this batch's refresh (entities in exigo_swept_entities(),
                  and every lookup: a lookup is read whole each batch, so a value gone from it
                  was removed by the company). -#}
{% macro exigo_history_spec(entity) -%}
    {%- set entry = exigo_entities()[entity] -%}
    {%- set keys = entry['key_columns'] -%}
    {%- set columns = exigo_history_columns(entity, keys) -%}
    {%- set deletions = [] -%}
    {%- if entry.get('parent') -%}{%- do deletions.append('by_parent') -%}{%- endif -%}
    {%- if entry['kind'] == 'lookup' or entity in exigo_swept_entities() -%}{%- do deletions.append('by_sweep') -%}{%- endif -%}
    {{ return({
        'entity': entity,
        'kind': entry['kind'],
        'table': entry['table'],
        'source_keys': entry['keys'],
        'key_columns': keys,
        'columns': columns,
        'column_names': columns | map(attribute='name') | list,
        'staging': ref('stg_exigo__' ~ entity),
        'parent_staging': ref('stg_exigo__' ~ entry['parent']) if entry.get('parent') else none,
        'deletions': deletions,
    }) }}
{%- endmacro %}

{#- The key as text ('12' or '12|3'), for the version id `key@batch`. -#}
{% macro exigo_key_text(keys) -%}
    {%- set parts = [] -%}
    {%- for k in keys -%}
        {%- if not loop.first -%}{%- do parts.append("'|'") -%}{%- endif -%}
        {%- do parts.append(exigo_text(k)) -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}
