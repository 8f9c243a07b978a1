{#- C1: the current-state table has one row per key ever seen, equal to that key's current
    history version (same version id, hash, deletion flag and time). Failing rows: mismatches. -#}
{% test exigo_current_matches_history(model, history_model, key_columns) %}
{%- set join_on = [] -%}
{%- for k in key_columns -%}{%- do join_on.append('cur.' ~ k ~ ' = hist.' ~ k) -%}{%- endfor -%}
with hist as (
    select * from {{ exigo_test_scope(history_model, key_columns) }} scoped_history
    where is_current = {{ exigo_true() }}
),

cur as (
    select * from {{ exigo_test_scope(model, key_columns) }} scoped_current
)

select
    {%- for k in key_columns %}
    coalesce(cur.{{ k }}, hist.{{ k }}) as {{ k }},
    {%- endfor %}
    cur.history_version_id as current_version,
    hist.history_version_id as history_version
from cur
full outer join hist
    on {{ join_on | join(' and ') }}
where cur.{{ key_columns[0] }} is null
   or hist.{{ key_columns[0] }} is null
   or cur.history_version_id <> hist.history_version_id
   or cur.row_hash <> hist.row_hash
   or cur.is_deleted <> hist.is_deleted
   or coalesce(cur.deleted_at, cur.valid_from) <> coalesce(hist.deleted_at, hist.valid_from)
{% endtest %}
