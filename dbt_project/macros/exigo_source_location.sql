{#- Where dbt finds the source's tables: always the warehouse's landing schemas, where the flow
    pinned this batch's snapshot before dbt runs (exigo_sync.warehouse.landing): the queue tables
    in exigo_landing, the swept entities' dbo keys, the rows of keys back at the source
    (`<Table>__reopen`) and the lookups in exigo_landing_dbo. dbt never reads the sync database
    itself: another consumer's queue.Refresh could replace the queue tables between two staging
    models (R3), and a sweep reading live dbo twice could see two different key sets (H9). The
    generated sources YAML holds the same locations (YAML cannot call macros);
    tests/dbt/test_project.py keeps the two in step. -#}
{% macro exigo_source_location(source_name) -%}
    {{ return({'database': target.database, 'schema': 'exigo_landing' if source_name == 'exigo_queue' else 'exigo_landing_dbo'}) }}
{%- endmacro %}

{#- The landing must hold THIS batch's copy of the source table (a queue table, or a dbo key set or
    lookup in exigo_landing_dbo), else a stale copy would merge under this batch's id. The flow
    swaps a complete copy in before dbt runs and records the batch in
    exigo_landing.landed_tables. -#}
{% macro exigo_check_landed_batch(source_name, table) -%}
    {#- Commands that only read (compile, docs generate, show) merge nothing: no batch to check. -#}
    {%- if execute and exigo_batch_vars_required() -%}
        {%- set landed_name = exigo_source_location(source_name).schema ~ '.' ~ table -%}
        {%- set manifest = api.Relation.create(database=target.database, schema='exigo_landing', identifier='landed_tables') -%}
        {%- set exists = adapter.get_relation(database=target.database, schema='exigo_landing', identifier='landed_tables') -%}
        {%- set landed = none -%}
        {%- if exists is not none -%}
            {%- set result = run_query("select max(batch_id) from " ~ manifest ~ " where table_name = " ~ exigo_string_literal(landed_name)) -%}
            {%- set landed = result.rows[0][0] if result.rows | length > 0 else none -%}
        {%- endif -%}
        {%- if landed is none or (landed | int) != exigo_batch_id() -%}
            {{ exceptions.raise_compiler_error("exigo_sync: the landing holds batch " ~ landed ~ "'s copy of " ~ ('queue.' if source_name == 'exigo_queue' else 'dbo.') ~ table ~ ", not batch " ~ exigo_batch_id() ~ "'s (B4); nothing was merged") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
