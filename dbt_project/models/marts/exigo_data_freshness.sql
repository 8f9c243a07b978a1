-- "Data as of", per entity: the source-clock time at which the last merged batch's
-- queue.Refresh began (everything the source held then is here), from the ledger
-- (exigo_sync.batches, the flow's table, found by name: it is no dbt model).
{%- set entities = exigo_entity_names() %}
{%- for entity in entities %}{% set _ = ref(entity ~ '_history') %}{% endfor %}
{%- set batches = exigo_ledger_relation('batches') %}
{%- set stats = exigo_ledger_relation('batch_entity_stats') %}

with entities as (
    {%- for entity in entities %}
    select
        cast('{{ entity }}' as {{ exigo_type_string() }}) as entity,
        cast('{{ exigo_entities()[entity]['kind'] }}' as {{ exigo_type_string() }}) as kind,
        (select max(batch_id) from {{ ref(entity ~ '_history') }}) as last_changed_batch_id
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

last_merged as (
    {%- if batches is not none %}
    select
        batch_id as last_merged_batch_id,
        refresh_started_at as data_as_of,
        finished_at as merged_at_utc
    from {{ batches }}
    where batch_id = (select max(batch_id) from {{ batches }} where status = 'merged')
    {%- else %}
    {#- Built without the flow (no ledger yet): the columns, no row. #}
    select
        cast(null as {{ exigo_type('bigint') }}) as last_merged_batch_id,
        cast(null as {{ exigo_type('datetime') }}) as data_as_of,
        cast(null as {{ exigo_type('datetime') }}) as merged_at_utc
    where 1 = 0
    {%- endif %}
),

{#- Deletions the queue cannot show are found by comparing keys with the source: in every batch
    for the swept entities (payments; lookups always), nightly (reconciliation) for the rest. #}
deletions_checked as (
    {%- if batches is not none and stats is not none %}
    select s.entity, max(b.refresh_started_at) as deletions_as_of
    from {{ stats }} s
    inner join {{ batches }} b
        on b.batch_id = s.batch_id
    where b.status = 'merged' and s.live_keys is not null
    group by s.entity
    {%- else %}
    select
        cast(null as {{ exigo_type_string() }}) as entity,
        cast(null as {{ exigo_type('datetime') }}) as deletions_as_of
    where 1 = 0
    {%- endif %}
)

select
    e.entity,
    e.kind,
    m.data_as_of,
    case when e.kind = 'lookup' then m.data_as_of else d.deletions_as_of end as deletions_as_of,
    m.last_merged_batch_id,
    m.merged_at_utc,
    e.last_changed_batch_id
from entities e
left join last_merged m
    on 1 = 1
left join deletions_checked d
    on d.entity = e.entity
