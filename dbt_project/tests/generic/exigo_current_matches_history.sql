{#- C1: the current-state table has exactly one row per key ever seen, equal to that key's
    current history version (same version id, hash, deletion flag and time). One test (one dbt
    node per entity in every batch) checks both the key's uniqueness and the match. Failing rows:
    the keys, each with the rule it breaks. -#}
{% test exigo_current_matches_history(model, history_model, key_columns) %}
{%- set join_on = [] -%}
{%- for k in key_columns -%}{%- do join_on.append('cur.' ~ k ~ ' = hist.' ~ k) -%}{%- endfor -%}
with hist as (
    select * from {{ exigo_test_scope(history_model, key_columns) }} scoped_history
    where is_current = {{ exigo_true() }}
),

cur as (
    select
        scoped_current.*,
        count(*) over (partition by {{ key_columns | join(', ') }}) as rows_for_key
    from {{ exigo_test_scope(model, key_columns) }} scoped_current
),

compared as (
    select
        {%- for k in key_columns %}
        coalesce(cur.{{ k }}, hist.{{ k }}) as {{ k }},
        {%- endfor %}
        cur.history_version_id as current_version,
        hist.history_version_id as history_version,
        case
            when cur.rows_for_key > 1 then 'more than one current-state row'
            when cur.{{ key_columns[0] }} is null then 'missing from current state'
            when hist.{{ key_columns[0] }} is null then 'no current version in history'
            when cur.history_version_id <> hist.history_version_id
              or cur.row_hash <> hist.row_hash
              or cur.is_deleted <> hist.is_deleted
              or coalesce(cur.deleted_at, cur.valid_from) <> coalesce(hist.deleted_at, hist.valid_from)
                then 'differs from the current version'
        end as broken_rule
    from cur
    full outer join hist
        on {{ join_on | join(' and ') }}
)

select * from compared where broken_rule is not null
{% endtest %}
