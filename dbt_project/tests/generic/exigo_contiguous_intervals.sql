{#- H3: per key, exactly one current version, and versions ordered by valid_from never overlap
    and leave no gap: each closed version's valid_to equals the next version's valid_from,
    valid_to is never before valid_from, and only the last version is open (valid_to NULL) and
    current. "Only the last is current" is "exactly one current per key", so one test (one dbt
    node per entity in every batch) checks both. Failing rows: the bad versions, each with the
    rule it breaks. -#}
{% test exigo_contiguous_intervals(model, key_columns) %}
with ordered as (
    select
        {{ key_columns | join(', ') }},
        valid_from,
        valid_to,
        is_current,
        lead(valid_from) over (
            partition by {{ key_columns | join(', ') }} order by valid_from, batch_id
        ) as next_valid_from,
        row_number() over (
            partition by {{ key_columns | join(', ') }} order by valid_from desc, batch_id desc
        ) as rank_from_last
    from {{ exigo_test_scope(model, key_columns) }} scoped_model
),

checked as (
    select
        ordered.*,
        case
            when rank_from_last > 1 and is_current = {{ exigo_true() }}
                then 'a second current version'
            when rank_from_last = 1 and is_current = {{ exigo_false() }}
                then 'no current version'
            when valid_to is not null and valid_to < valid_from
                then 'valid_to before valid_from'
            when rank_from_last = 1 and valid_to is not null
                then 'last version closed'
            when rank_from_last > 1
                 and (valid_to is null or next_valid_from is null or valid_to <> next_valid_from)
                then 'gap or overlap with the next version'
        end as broken_rule
    from ordered
)

select * from checked where broken_rule is not null
{% endtest %}
