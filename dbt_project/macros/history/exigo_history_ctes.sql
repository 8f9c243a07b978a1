{#- The CTEs of an entity's history model (exigo_scd2_history), one macro each. Every one takes
    the spec (exigo_history_spec). -#}

{#- This batch's rows, shaped like history (columns the staging table lacks become typed NULLs). -#}
{% macro exigo_history_staged(spec) -%}
    select
        {{- exigo_column_list(spec.key_columns) }}
        {%- for c in spec.columns %}
        {% if c.in_staging %}{{ c.name }}{% else %}cast(null as {{ c.type }}){% endif %} as {{ c.name }},
        {%- endfor %}
        version_time,
        row_hash,
        {{ exigo_false() }} as is_deleted
    from {{ spec.staging }}
{%- endmacro %}

{#- Live keys gone from the source and absent from this batch (by_sweep): keys only. -#}
{% macro exigo_history_sweep_missing(spec) -%}
    {{ exigo_sweep_missing_keys_sql(spec.entity, this, spec.staging) }}
{%- endmacro %}

{#- The keys this batch can change: its own rows, the lines of its orders (by_parent) and the
    swept keys missing at the source (by_sweep). Only their current rows are read from history,
    so a batch costs what its changes cost, not what the history holds. -#}
{% macro exigo_history_touched_keys(spec) -%}
    select {{ spec.key_columns | join(', ') }} from {{ spec.staging }}
    {%- if 'by_parent' in spec.deletions %}
    union
    select {{ exigo_prefixed(spec.key_columns, 'line') }}
    from {{ this }} line
    where line.is_current = {{ exigo_true() }}
      and exists (select 1 from {{ spec.parent_staging }} parent_batch where {{ exigo_parent_join(spec.entity, 'line', 'parent_batch') }})
    {%- endif %}
    {%- if 'by_sweep' in spec.deletions %}
    union
    select {{ spec.key_columns | join(', ') }} from sweep_missing
    {%- endif %}
{%- endmacro %}

{#- The current history row of every touched key. -#}
{% macro exigo_history_current_rows(spec) -%}
    select
        {{- exigo_column_list(spec.key_columns, 'cur') }}
        {%- for c in spec.columns %}
        {% if c.in_history %}cur.{{ c.name }}{% else %}cast(null as {{ c.type }}){% endif %} as {{ c.name }},
        {%- endfor %}
        cur.valid_from,
        cur.is_deleted,
        cur.deleted_at,
        cur.row_hash,
        cur.batch_id,
        cur.history_version_id
    from {{ this }} cur
    where cur.is_current = {{ exigo_true() }}
      and exists (select 1 from touched_keys t where {{ exigo_key_join(spec.key_columns, 't', 'cur') }})
{%- endmacro %}

{#- H7 by_parent: a live line of an order in this batch, missing from the batch, was removed at
    the source; the deletion version repeats its last values, at the order's version time. -#}
{% macro exigo_deletions_by_parent(spec) -%}
    select
        {{- exigo_column_list(spec.key_columns, 'cur') }}
        {{- exigo_column_list(spec.column_names, 'cur') }}
        parent_order.version_time as version_time,
        cur.row_hash,
        {{ exigo_true() }} as is_deleted
    from current_rows cur
    inner join {{ spec.parent_staging }} parent_order
        on {{ exigo_parent_join(spec.entity, 'cur', 'parent_order') }}
    where cur.is_deleted = {{ exigo_false() }}
      and not exists (select 1 from staged s where {{ exigo_key_join(spec.key_columns, 's', 'cur') }})
{%- endmacro %}

{#- H7 by_sweep: a live key gone from the source and absent from this batch was deleted there,
    dated at this batch's refresh (the source keeps no deletion time). H9 guarded it before this
    model ran (exigo_deletion_guard). -#}
{% macro exigo_deletions_by_sweep(spec) -%}
    select
        {{- exigo_column_list(spec.key_columns, 'cur') }}
        {{- exigo_column_list(spec.column_names, 'cur') }}
        {{ exigo_timestamp_literal(exigo_batch_refreshed_at()) }} as version_time,
        cur.row_hash,
        {{ exigo_true() }} as is_deleted
    from current_rows cur
    inner join sweep_missing gone
        on {{ exigo_key_join(spec.key_columns, 'gone', 'cur') }}
{%- endmacro %}

{#- Per key, against the key's current row:
      no current row                -> new version
      same row_hash and is_deleted  -> nothing (H4)
      otherwise                     -> new version; the current row closes at its start (H3)
    A version is never older than the current one because of its stamp (H5): the current row
    came from an earlier refresh, and this batch's row is the source's state at a later one
    (pinned, R3). A stamp no later than the current version's (a clock gone back: a
    daylight-saving fall-back, a corrected clock, a capped future stamp, W4) starts the new
    version at the next instant after the current one, so intervals stay ordered. Within one
    batch the latest stamp wins (staging, B2). A row this very batch opened (a re-run of the same
    batch) is replaced by its id instead. -#}
{% macro exigo_history_compared(spec) -%}
    {%- set batch_id = exigo_batch_id() -%}
    select
        inc.*,
        case
            when cur.{{ spec.key_columns[0] }} is null then 'new'
            when inc.row_hash = cur.row_hash and inc.is_deleted = cur.is_deleted then 'same'
            else 'change'
        end as transition,
        case
            when cur.{{ spec.key_columns[0] }} is not null
                 and cur.batch_id <> {{ batch_id }}
                 and inc.version_time <= cur.valid_from
            then {{ exigo_next_instant('cur.valid_from') }}
            else inc.version_time
        end as valid_from
    from incoming inc
    left join current_rows cur
        on {{ exigo_key_join(spec.key_columns, 'cur', 'inc') }}
{%- endmacro %}

{% macro exigo_history_new_versions(spec) -%}
    {%- set ts = exigo_type('datetime') -%}
    {%- set batch_id = exigo_batch_id() -%}
    select
        {{- exigo_column_list(spec.key_columns) }}
        {{- exigo_column_list(spec.column_names) }}
        valid_from,
        cast(null as {{ ts }}) as valid_to,
        {{ exigo_true() }} as is_current,
        is_deleted,
        case when is_deleted = {{ exigo_true() }} then valid_from else cast(null as {{ ts }}) end as deleted_at,
        row_hash,
        cast({{ batch_id }} as {{ exigo_type('int') }}) as batch_id,
        cast({{ exigo_concat_text(exigo_key_text(spec.key_columns) + ["'@'", exigo_text(batch_id ~ '')]) }} as {{ exigo_version_id_type() }}) as history_version_id
    from compared
    where transition in ('new', 'change')
{%- endmacro %}

{#- The previous current row, closed where the new version starts. If this very batch id opened
    it (a re-run of the same batch with other data) the new row replaces it instead. -#}
{% macro exigo_history_closed_versions(spec) -%}
    select
        {{- exigo_column_list(spec.key_columns, 'cur') }}
        {{- exigo_column_list(spec.column_names, 'cur') }}
        cur.valid_from,
        nv.valid_from as valid_to,
        {{ exigo_false() }} as is_current,
        cur.is_deleted,
        cur.deleted_at,
        cur.row_hash,
        cur.batch_id,
        cur.history_version_id
    from current_rows cur
    inner join new_versions nv
        on {{ exigo_key_join(spec.key_columns, 'cur', 'nv') }}
    where cur.history_version_id <> nv.history_version_id
{%- endmacro %}

{#- `a.k1, a.k2`: key columns qualified by an alias. -#}
{% macro exigo_prefixed(names, alias) -%}
    {%- set out = [] -%}
    {%- for n in names -%}{%- do out.append(alias ~ '.' ~ n) -%}{%- endfor -%}
    {{ return(out | join(', ')) }}
{%- endmacro %}
