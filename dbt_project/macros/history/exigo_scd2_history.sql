{#- ---------------------------------------------------------------------------------------------
    SCD type 2 history for one entity (H1-H7). Incremental, delete+insert on history_version_id:
    each run emits (1) the new versions opened by this batch and (2) the previous current rows
    re-emitted closed; delete+insert then swaps those closed rows in by their version id.

        staged          this batch's rows (staging; reopened keys included, see staging)
        sweep_missing   by_sweep: live keys gone from the source's keys (keys only)
        touched_keys    the keys this batch can change
        current_rows    their current history rows (nothing else of history is read)
        deletions_*     deletion versions by kind (H7)
        incoming        staged + deletions
        compared        the transition per key (new / same / change) and its valid_from
        new_versions    + closed_versions = what delete+insert writes
--------------------------------------------------------------------------------------------- -#}
{% macro exigo_scd2_history(entity) -%}
    {%- set spec = exigo_history_spec(entity) -%}
    {{- config(indexes=exigo_table_indexes('history', spec.key_columns)) -}}
    {#- Registered at parse time (is_incremental() is false there) so dbt records every
        dependency: ALL staging models (a bad queue table fails its staging model, and then no
        entity merges anything, B3/B4), the deletion guard (H9), the source's keys. -#}
    {%- for other in exigo_entities().keys() -%}{%- set _ = ref('stg_exigo__' ~ other) -%}{%- endfor -%}
    {%- set _ = ref('exigo_deletion_guard') -%}
    {%- set _ = source('exigo_dbo', spec.table) -%}

with staged as (
    {{ exigo_history_staged(spec) }}
),

{%- if is_incremental() %}
{%- if 'by_sweep' in spec.deletions %}

sweep_missing as (
    {{ exigo_history_sweep_missing(spec) }}
),
{%- endif %}

touched_keys as (
    {{ exigo_history_touched_keys(spec) }}
),

current_rows as (
    {{ exigo_history_current_rows(spec) }}
),

incoming as (
    select * from staged
    {%- if 'by_parent' in spec.deletions %}
    union all
    {{ exigo_deletions_by_parent(spec) }}
    {%- endif %}
    {%- if 'by_sweep' in spec.deletions %}
    union all
    {{ exigo_deletions_by_sweep(spec) }}
    {%- endif %}
),

compared as (
    {{ exigo_history_compared(spec) }}
),

{%- else %}

compared as (
    select staged.*, 'new' as transition, staged.version_time as valid_from from staged
),

{%- endif %}

new_versions as (
    {{ exigo_history_new_versions(spec) }}
)

select * from new_versions
{%- if is_incremental() %}

union all

{{ exigo_history_closed_versions(spec) }}
{%- endif %}
{%- endmacro %}
