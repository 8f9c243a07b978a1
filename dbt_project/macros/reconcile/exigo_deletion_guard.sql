{#- H9: before any history model writes, each swept entity's deletions are counted. If the source
    returned no keys while the warehouse has live ones (a sync re-initialising, a permissions
    change, an empty landing copy), or more than exigo_deletion_guard_share (default 5%) of the
    live keys would be deleted, the model fails naming the entity and the numbers: every history
    model depends on it, so nothing is deleted (or merged) in that batch. An operator who knows
    the deletions are real confirms them for one run (exigo_confirm_deletions, the flow's
    `--confirm-deletions ENTITY`). The model keeps the counts it saw, for the ledger.
    Lookups (swept every batch) are guarded against an empty source only: they hold a handful of
    values, so removing one is a large share and an ordinary edit, while an empty lookup (a
    failed copy, a permissions change) would close every description the marts show. -#}
{% macro exigo_deletion_guard() -%}
    {#- Registered at parse time: every staging model and every source table the guard may read. -#}
    {%- for entity, entry in exigo_entities().items() -%}
        {%- set _ = ref('stg_exigo__' ~ entity) -%}
        {%- set _ = source('exigo_dbo', entry['table']) -%}
    {%- endfor -%}
    {%- set rows = [] -%}
    {%- if execute -%}
        {%- set share = var('exigo_deletion_guard_share', 0.05) | float -%}
        {%- set confirmed = var('exigo_confirm_deletions', []) -%}
        {%- if confirmed is string -%}{%- set confirmed = [confirmed] -%}{%- endif -%}
        {%- for entity in exigo_swept_entities() + exigo_entity_names('lookup') -%}
            {%- set history = exigo_history_relation(entity) -%}
            {%- if history is not none -%}
                {%- set table = exigo_entities()[entity]['table'] -%}
                {%- set counts = run_query(
                    "select (select count(*) from " ~ history ~ " h where h.is_current = " ~ exigo_true() ~ " and h.is_deleted = " ~ exigo_false() ~ "), "
                    ~ "(select count(*) from " ~ source('exigo_dbo', table) ~ "), "
                    ~ "(select count(*) from (" ~ exigo_sweep_missing_keys_sql(entity, history, ref('stg_exigo__' ~ entity)) ~ ") m)"
                ) -%}
                {%- do exigo_end_read_transaction() -%}
                {%- set live, at_source, missing = counts.rows[0][0] | int, counts.rows[0][1] | int, counts.rows[0][2] | int -%}
                {%- set is_confirmed = entity in confirmed -%}
                {%- set where = "the source's dbo." ~ table -%}
                {%- if not is_confirmed and live > 0 and at_source == 0 -%}
                    {{ exceptions.raise_compiler_error("exigo_sync: deletion guard (H9): " ~ entity ~ ": " ~ where ~ " returned no keys while the warehouse holds " ~ live ~ " live ones; nothing was deleted and the batch stops. If the source really is empty, confirm once: exigo-sync run --confirm-deletions " ~ entity) }}
                {%- endif -%}
                {%- if not is_confirmed and missing > share * live and exigo_entities()[entity]['kind'] != 'lookup' -%}
                    {{ exceptions.raise_compiler_error("exigo_sync: deletion guard (H9): " ~ entity ~ ": " ~ missing ~ " of " ~ live ~ " live keys (" ~ ((100.0 * missing / live) | round(1)) ~ "%) are missing from " ~ where ~ ", more than the " ~ ((100.0 * share) | round(1)) ~ "% allowed (exigo_deletion_guard_share); nothing was deleted and the batch stops. If they really were deleted, confirm once: exigo-sync run --confirm-deletions " ~ entity) }}
                {%- endif -%}
                {%- do rows.append({'entity': entity, 'live': live, 'source': at_source, 'missing': missing, 'confirmed': is_confirmed}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
select
    cast(entity as {{ exigo_type_string() }}) as entity,
    cast({{ exigo_batch_id() }} as {{ exigo_type('int') }}) as batch_id,
    live_keys,
    source_keys,
    missing_keys,
    confirmed
from (
    {%- for r in rows %}
    select '{{ r.entity }}' as entity, {{ r.live }} as live_keys, {{ r.source }} as source_keys,
        {{ r.missing }} as missing_keys, {{ exigo_true() if r.confirmed else exigo_false() }} as confirmed
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {%- if not rows %}
    select 'none' as entity, 0 as live_keys, 0 as source_keys, 0 as missing_keys, {{ exigo_false() }} as confirmed
    {%- endif %}
) counted
{%- if not rows %}
where 1 = 0
{%- endif %}
{%- endmacro %}
