{#- ---------------------------------------------------------------------------------------------
    Staging: one macro turns an entity's source table (a queue snapshot table, or a whole dbo
    lookup table) into the typed, policy-applied, hashed and de-duplicated rows of one batch.
    Column knowledge comes from two places:
      (a) the documented columns in models/staging/_exigo__sources.yml (SQL Server data_type), and
      (b) the columns actually present in the source table, read at execution time.
    Documented-but-missing columns become typed NULLs (B3) unless required (B4: error);
    undocumented columns are carried with their own type (B3). Uncastable values fail (B3).
--------------------------------------------------------------------------------------------- -#}

{#- H1 row hash: for every column in a fixed (alphabetical) order, name + length + value when
    non-null, nothing when NULL: NULL differs from '', and a column added at the source that is
    still all-NULL leaves existing hashes unchanged. Full SHA-256 over the whole text, never
    truncated (exigo_concat_text: no 8000-byte CONCAT limit on SQL Server). -#}
{% macro exigo_row_hash(columns) -%}
    {%- set parts = [] -%}
    {%- for c in columns | sort(attribute='name') -%}
        {%- set txt = exigo_text(c.name, c.type) -%}
        {%- do parts.append("case when " ~ c.name ~ " is null then '' else " ~ exigo_concat_text(["'" ~ c.name ~ ":'", exigo_text(exigo_length(txt)), "':'", txt, "';'"]) ~ " end") -%}
    {%- endfor -%}
    {{ exigo_hash(exigo_concat_text(parts)) }}
{%- endmacro %}

{#- The typed rows of a queue table with their version time and reject reason (shared by the
    staging model and the rejected-rows model). -#}
{#- relation / version_time / where: the same typing over another relation with the same columns
    (reopened keys read from dbo, exigo_reopened_rows_sql), dated at a given time. -#}
{% macro exigo_typed_rows_sql(plan, relation=none, version_time=none, where=none) -%}
    {%- set key_names = exigo_entities()[plan['entity']]['key_columns'] -%}
    {%- set pairs = [] -%}
    {%- for c in plan['columns'] -%}{%- do pairs.append([c.source, c.name]) -%}{%- endfor -%}
    {%- if plan['parent'] -%}
        {%- set parent_rel = source('exigo_queue', exigo_entities()[plan['parent']]['table']) -%}
    {%- endif -%}
    {#- A lookup has no timestamp: its rows are dated at this batch's refresh. -#}
    {%- if version_time is none and plan['kind'] == 'lookup' -%}
        {%- set version_time = exigo_timestamp_literal(exigo_batch_refreshed_at()) -%}
    {%- endif -%}
    select
        typed.*,
        case
            {%- for k in key_names %}
            when typed.{{ k }} is null then 'null key column {{ plan['keys'][loop.index0] }}'
            {%- endfor %}
            {%- if plan['parent'] %}
            when typed.version_time is null then 'parent order not in batch'
            {%- else %}
            when typed.version_time is null then 'null ModifiedDate'
            {%- endif %}
        end as reject_reason,
        {{ exigo_row_to_json(pairs) }} as raw_row
    from (
        select
            {%- for c in plan['columns'] %}
            {{ c.expr }} as {{ c.name }},
            {%- endfor %}
            {%- if version_time is not none %}
            {{ version_time }} as version_time
            {%- elif plan['parent'] %}
            {{ exigo_capped_version_time('parent_order.version_time') }} as version_time
            {%- else %}
            {{ exigo_capped_version_time('q.' ~ exigo_quote('ModifiedDate')) }} as version_time
            {%- endif %}
        from {{ relation if relation is not none else plan['relation'] }} as q
        {% if plan['parent'] and version_time is none -%}
        {# An order line's version time is its parent order's ModifiedDate in the same batch
            (the latest, should the order appear twice). #}
        {%- set parent_keys = exigo_entities()[plan['entity']]['parent_keys'] %}
        left join (
            select
                {%- for pair in parent_keys %}
                {{ exigo_quote(pair[1]) }} as parent_key_{{ loop.index }},
                {%- endfor %}
                max({{ exigo_quote('ModifiedDate') }}) as version_time
            from {{ parent_rel }}
            group by {% for pair in parent_keys %}{{ exigo_quote(pair[1]) }}{{ ', ' if not loop.last }}{% endfor %}
        ) parent_order
            on {% for pair in parent_keys %}parent_order.parent_key_{{ loop.index }} = q.{{ exigo_quote(pair[0]) }}{{ ' and ' if not loop.last }}{% endfor %}
        {%- endif %}
        {%- if where is not none %}
        where {{ where }}
        {%- endif %}
    ) typed
{%- endmacro %}

{#- Keys back at the source, or never received (H7, W4; swept entities): the flow pinned their
    source rows in `<Table>__reopen`. A key whose current history version is a deletion (a
    restore, a sync re-initialisation: its ModifiedDate is old, so the queue never shows it) is
    dated at this batch's refresh and gets a new live version. A key history has no version of
    (a complete warehouse's reconciliation found it at the source, never delivered) is dated at
    its own ModifiedDate (capped, W4), or at the refresh for a table without one. A key with a
    live current version is never staged from here. '' when the entity is not swept or nothing
    can be read. -#}
{% macro exigo_reopened_rows_sql(plan) -%}
    {%- set entity = plan['entity'] -%}
    {%- set history = exigo_history_relation(entity) -%}
    {%- set reopen = exigo_reopen_relation(entity) if entity in exigo_swept_entities() else none -%}
    {%- if history is none or reopen is none -%}{{ return('') }}{%- endif -%}
    {%- set queue_join = [] -%}
    {%- for k in plan['keys'] -%}{%- do queue_join.append('batch_row.' ~ exigo_quote(k) ~ ' = q.' ~ exigo_quote(k)) -%}{%- endfor -%}
    {%- set refreshed = exigo_timestamp_literal(exigo_batch_refreshed_at()) -%}
    {%- set seen -%}
        exists (select 1 from {{ history }} h where {{ exigo_source_key_join(entity, 'q', 'h') }})
    {%- endset -%}
    {%- set where -%}
        (
            exists (
                select 1 from {{ history }} h
                where h.is_current = {{ exigo_true() }} and h.is_deleted = {{ exigo_true() }}
                  and {{ exigo_source_key_join(entity, 'q', 'h') }}
            )
            or not {{ seen }}
        )
        and not exists (select 1 from {{ plan['relation'] }} batch_row where {{ queue_join | join(' and ') }})
    {%- endset -%}
    {%- if exigo_entities()[entity].get('parent') -%}
        {%- set version_time = refreshed -%}
    {%- else -%}
        {%- set version_time = "case when " ~ seen ~ " then " ~ refreshed ~ " else " ~ exigo_capped_version_time('q.' ~ exigo_quote('ModifiedDate')) ~ " end" -%}
    {%- endif -%}
    {{ return(exigo_typed_rows_sql(plan, relation=reopen, version_time=version_time, where=where)) }}
{%- endmacro %}

{#- source() calls made at parse time too, so dbt records the lineage (the real work only
    happens at execution time). -#}
{% macro exigo_register_sources(entity) -%}
    {%- set spec = exigo_entities()[entity] -%}
    {%- set rel = source(exigo_entity_source(entity), spec['table']) -%}
    {%- set truth = source('exigo_dbo', spec['table']) -%}
    {%- if spec.get('parent') -%}
        {%- set parent_rel = source('exigo_queue', exigo_entities()[spec['parent']]['table']) -%}
    {%- endif -%}
{%- endmacro %}

{#- Staging model body: one row per key, latest version time wins (B2). -#}
{% macro exigo_stage_table(entity) -%}
    {{ exigo_register_sources(entity) }}
    {%- if not execute -%}
        {# Parse time: no database; nothing below is rendered for real. #}
        {{ return('select 1 as parse_placeholder') }}
    {%- endif -%}
    {#- Both batch vars are checked here, in staging, so a bad invocation fails before any merge. -#}
    {%- set refreshed_at = exigo_batch_refreshed_at() -%}
    {%- set plan = exigo_stage_plan(entity) -%}
    {%- set key_names = exigo_entities()[entity]['key_columns'] -%}
    {%- set names = [] -%}
    {%- for c in plan['columns'] -%}{%- do names.append(c.name) -%}{%- endfor -%}
    {%- set hashed_columns = [] -%}
    {%- for c in plan['columns'] -%}{%- do hashed_columns.append({'name': c.name, 'type': c.type}) -%}{%- endfor -%}
    {%- set reopened = exigo_reopened_rows_sql(plan) -%}
with typed as (
    {{ exigo_typed_rows_sql(plan) }}
    {%- if reopened %}
    union all
    {{ reopened }}
    {%- endif %}
),

hashed as (
    select
        {%- for n in names %}
        {{ n }},
        {%- endfor %}
        version_time,
        {{ exigo_row_hash(hashed_columns) }} as row_hash
    from typed
    where reject_reason is null
),

ranked as (
    select
        hashed.*,
        count(*) over (partition by {{ key_names | join(', ') }}) as source_row_count,
        {# A tie: different contents at the winning version time. Broken by row_hash, flagged. #}
        case
            when min(row_hash) over (partition by {{ key_names | join(', ') }}, version_time)
                 <> max(row_hash) over (partition by {{ key_names | join(', ') }}, version_time)
            then 1 else 0
        end as tie_flag,
        row_number() over (
            partition by {{ key_names | join(', ') }}
            order by version_time desc, row_hash desc
        ) as version_rank
    from hashed
)

select
    {%- for n in names %}
    {{ n }},
    {%- endfor %}
    cast({{ exigo_batch_id() }} as {{ exigo_type('int') }}) as batch_id,
    version_time,
    row_hash,
    source_row_count,
    case when tie_flag = 1 then {{ exigo_true() }} else {{ exigo_false() }} end as is_tie_broken
from ranked
where version_rank = 1
{%- endmacro %}

{#- Rejected rows of one queue table for this batch (B1). raw_row holds the policy-applied row
    (S2: a dropped secret never reaches the rejected-rows table either). -#}
{% macro exigo_rejected_rows_sql(entity) -%}
    {%- set plan = exigo_stage_plan(entity) -%}
    select
        cast('{{ entity }}' as {{ exigo_type_string() }}) as entity,
        cast({{ exigo_batch_id() }} as {{ exigo_type('int') }}) as batch_id,
        cast(reject_reason as {{ exigo_type_string() }}) as reason,
        cast(raw_row as {{ exigo_type_string() }}) as raw_row,
        {{ dbt.current_timestamp() }} as rejected_at
    from (
        {{ exigo_typed_rows_sql(plan) }}
    ) rows_with_reason
    where reject_reason is not null
{%- endmacro %}
