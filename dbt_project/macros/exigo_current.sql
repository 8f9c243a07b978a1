{#- Current state (C1): one row per key = the key's current history version. Incremental on the
    key: each run takes the current history rows opened by batches newer than anything already
    here, so a run that crashed between history and current is healed by the next one (R1). -#}
{% macro exigo_current_state(entity) -%}
    {%- set key_names = exigo_entities()[entity]['key_columns'] -%}
    {{- config(unique_key=key_names[0] if key_names | length == 1 else key_names, indexes=exigo_table_indexes('current', key_names)) -}}
    {%- set history = ref(entity ~ '_history') -%}
    {%- set skip = ['valid_to', 'is_current'] -%}
    {%- set cols = [] -%}
    {%- if execute -%}
        {%- for col in adapter.get_columns_in_relation(history) -%}
            {%- if col.name | lower not in skip -%}{%- do cols.append(col.name) -%}{%- endif -%}
        {%- endfor -%}
        {%- do exigo_end_read_transaction() -%}
    {%- endif -%}
select
    {%- for c in cols %}
    {{ exigo_quote(c) }}{{ ',' if not loop.last }}
    {%- endfor %}
    {%- if not cols %} * {%- endif %}
from {{ history }}
where is_current = {{ exigo_true() }}
{%- if is_incremental() %}
  and batch_id > (select coalesce(max(batch_id), -1) from {{ this }})
{%- endif %}
{%- endmacro %}
