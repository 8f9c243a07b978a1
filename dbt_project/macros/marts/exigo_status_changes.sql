{#- ---------------------------------------------------------------------------------------------
    Status changes of one entity from its SCD2 history: one row per status a key entered (an
    "episode"), with when it entered it, when it left it and the seconds in between.

    From the key's versions in valid_from order, a live version starts an episode when it is the
    key's first version, follows a deletion version, or has another status than the version
    before it (versions that only change other columns continue the episode). An episode ends
    where the next episode starts or where the key was deleted (a deletion version), whichever
    comes first; it is open (left_at NULL, seconds_in_status NULL) while the key is in it.

    Incremental, delete+insert on the key: a run recomputes every episode of the keys with a
    history row from a batch newer than the newest batch already here (batch_id = the key's
    newest history batch), so a batch costs what its changed keys cost and a run that missed a
    batch (a crash before this model) is healed by the next one, as current state is (R1). The
    first build (or --full-refresh) reads the whole history.

    What the warehouse cannot know: a status a key held only between two refreshes was never
    delivered, so it has no episode (the previous episode runs until the next delivered status).
    The first version of a key loaded by the initial load is dated at its ModifiedDate then.
--------------------------------------------------------------------------------------------- -#}
{% macro exigo_status_changes(entity, status_column) -%}
    {%- set keys = exigo_entities()[entity]['key_columns'] -%}
    {{- config(unique_key=keys, indexes=exigo_table_indexes('changes', keys + ['status_seq'])) -}}
    {%- set history = ref(entity ~ '_history') -%}
    {%- set by_key = keys | join(', ') -%}
    {%- set previous_column = 'previous_' ~ status_column -%}

with
{%- if is_incremental() %}

{#- The keys with a history row newer than anything here: this batch's (and a missed batch's). #}
changed_keys as (
    select distinct {{ by_key }}
    from {{ history }}
    where batch_id > (select coalesce(max(batch_id), -1) from {{ this }})
),
{%- endif %}

versions as (
    select
        {{- exigo_column_list(keys, 'h') }}
        h.{{ status_column }} as status,
        h.valid_from,
        h.is_deleted,
        h.batch_id
    from {{ history }} h
    {%- if is_incremental() %}
    where exists (select 1 from changed_keys c where {{ exigo_key_join(keys, 'c', 'h') }})
    {%- endif %}
),

ordered as (
    select
        versions.*,
        lag(status) over (partition by {{ by_key }} order by valid_from) as status_before,
        lag(is_deleted) over (partition by {{ by_key }} order by valid_from) as deleted_before,
        max(batch_id) over (partition by {{ by_key }}) as key_batch_id
    from versions
),

{#- Episode starts and deletion versions: the instants at which an episode can end. -#}
boundaries as (
    select
        ordered.*,
        case
            when is_deleted = {{ exigo_true() }} then 0
            when deleted_before is null or deleted_before = {{ exigo_true() }} then 1
            when status <> status_before
              or (status is null and status_before is not null)
              or (status is not null and status_before is null) then 1
            else 0
        end as starts_episode
    from ordered
),

episodes as (
    select
        boundaries.*,
        lead(valid_from) over (partition by {{ by_key }} order by valid_from) as next_boundary_at,
        lead(is_deleted) over (partition by {{ by_key }} order by valid_from) as next_is_deletion
    from boundaries
    where starts_episode = 1 or is_deleted = {{ exigo_true() }}
)

select
    {{- exigo_column_list(keys) }}
    cast(row_number() over (partition by {{ by_key }} order by valid_from) as {{ exigo_type('int') }}) as status_seq,
    lag(status) over (partition by {{ by_key }} order by valid_from) as {{ previous_column }},
    status as {{ status_column }},
    valid_from as entered_at,
    next_boundary_at as left_at,
    {{ dbt.datediff('valid_from', 'next_boundary_at', 'second') }} as seconds_in_status,
    case when next_is_deletion = {{ exigo_true() }} then {{ exigo_true() }} else {{ exigo_false() }} end as ended_by_deletion,
    case when next_boundary_at is null then {{ exigo_true() }} else {{ exigo_false() }} end as is_current_status,
    key_batch_id as batch_id
from episodes
where starts_episode = 1
{%- endmacro %}
