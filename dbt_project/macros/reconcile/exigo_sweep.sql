{#- Key reconciliation (H7, H9): for the swept entities, the warehouse's live keys are compared
    with the source's keys. A live key missing at the source gets a deletion version; a deleted
    key present at the source again is reopened (staging takes its row). Payments are swept in
    every batch (Exigo deletes them physically); a reconciliation run sweeps all six entities
    (the flow passes exigo_deletion_sweep_entities). -#}

{#- The replicated entities swept this run (var exigo_deletion_sweep_entities). Lookups are not
    named here: they are swept in every batch (exigo_history_spec). -#}
{% macro exigo_swept_entities() -%}
    {%- set swept = var('exigo_deletion_sweep_entities', ['payments']) -%}
    {%- if swept is string -%}{%- set swept = [swept] -%}{%- endif -%}
    {%- set replicated = exigo_entity_names('replicated') -%}
    {%- for e in swept -%}
        {%- if e not in replicated -%}
            {{ exceptions.raise_compiler_error("exigo_sync: exigo_deletion_sweep_entities names '" ~ e ~ "', which is not a replicated entity (" ~ (replicated | join(', ')) ~ ")") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(swept) }}
{%- endmacro %}

{#- The history table of an entity, found by name (not ref: staging and the guard read the
    state the previous batches left, before this batch's history model runs). None before the
    first build. -#}
{% macro exigo_history_relation(entity) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set rel = adapter.get_relation(database=target.database, schema=generate_schema_name('exigo_history', none) | trim, identifier=entity ~ '_history') -%}
    {%- do exigo_end_read_transaction() -%}
    {{ return(rel) }}
{%- endmacro %}

{#- `src.[CustomerID] = cur.customer_id and ...`: a source relation (PascalCase columns) joined
    to a warehouse one (snake_case). -#}
{% macro exigo_source_key_join(entity, source_alias, warehouse_alias) -%}
    {%- set entry = exigo_entities()[entity] -%}
    {%- set parts = [] -%}
    {%- for k in entry['keys'] -%}
        {%- do parts.append(source_alias ~ '.' ~ exigo_quote(k) ~ ' = ' ~ warehouse_alias ~ '.' ~ entry['key_columns'][loop.index0]) -%}
    {%- endfor -%}
    {{ return(parts | join(' and ')) }}
{%- endmacro %}

{#- Live keys of `history` gone from the source's keys and absent from this batch (`staging`):
    keys only, so it reads no more than the key columns of history, source and batch. An order
    line of an order in this batch is left to the by_parent deletion (one deletion per key). -#}
{% macro exigo_sweep_missing_keys_sql(entity, history, staging) -%}
    {%- set entry = exigo_entities()[entity] -%}
    {%- set keys = entry['key_columns'] -%}
    select {{ exigo_prefixed(keys, 'live') }}
    from {{ history }} live
    where live.is_current = {{ exigo_true() }}
      and live.is_deleted = {{ exigo_false() }}
      and not exists (
          select 1 from {{ source('exigo_dbo', exigo_entities()[entity]['table']) }} src
          where {{ exigo_source_key_join(entity, 'src', 'live') }}
      )
      and not exists (select 1 from {{ staging }} s where {{ exigo_key_join(keys, 's', 'live') }})
      {%- if entry.get('parent') %}
      and not exists (
          select 1 from {{ ref('stg_exigo__' ~ entry['parent']) }} parent_batch
          where {{ exigo_parent_join(entity, 'live', 'parent_batch') }}
      )
      {%- endif %}
{%- endmacro %}

{#- Where the rows of keys back at the source are read: the rows the flow pinned for exactly those
    keys (exigo_landing_dbo.<Table>__reopen: keys whose current version is a deletion, and in a
    complete warehouse keys never received, W4). None when there is nothing to read. -#}
{% macro exigo_reopen_relation(entity) -%}
    {%- set table = exigo_entities()[entity]['table'] -%}
    {%- set rel = adapter.get_relation(database=target.database, schema='exigo_landing_dbo', identifier=table ~ '__reopen') -%}
    {%- do exigo_end_read_transaction() -%}
    {{ return(rel) }}
{%- endmacro %}
