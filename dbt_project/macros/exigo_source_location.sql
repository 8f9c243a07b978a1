{#- Where dbt finds the source's tables: in the sync database itself (co-located topology), or in
    the warehouse's landing schemas, where the flow copied this batch's snapshot (landed; the
    flow passes exigo_landed: true). The generated sources YAML holds the same expressions (YAML
    cannot call macros); tests/dbt/test_project.py keeps the two in step. -#}
{% macro exigo_landed() -%}
    {{ return((var('exigo_landed', false) | string | lower) in ('true', '1')) }}
{%- endmacro %}

{% macro exigo_source_location(source_name) -%}
    {%- set queue = source_name == 'exigo_queue' -%}
    {%- if exigo_landed() -%}
        {{ return({'database': target.database, 'schema': 'exigo_landing' if queue else 'exigo_landing_dbo'}) }}
    {%- endif -%}
    {{ return({'database': var('exigo_source_database', 'exigo'), 'schema': 'queue' if queue else 'dbo'}) }}
{%- endmacro %}

{#- Landed topology: the landing must hold THIS batch's copy of the source table (a queue table,
    or a lookup in exigo_landing_dbo), else a stale copy would merge under this batch's id. The
    flow swaps a complete copy in before dbt runs and records the batch in
    exigo_landing.landed_tables. -#}
{% macro exigo_check_landed_batch(source_name, table) -%}
    {%- if execute and exigo_landed() -%}
        {%- set landed_name = exigo_source_location(source_name).schema ~ '.' ~ table -%}
        {%- set manifest = api.Relation.create(database=target.database, schema='exigo_landing', identifier='landed_tables') -%}
        {%- set result = run_query("select max(batch_id) from " ~ manifest ~ " where table_name = '" ~ landed_name ~ "'") -%}
        {%- set landed = result.rows[0][0] if result.rows | length > 0 else none -%}
        {%- if landed is none or (landed | int) != exigo_batch_id() -%}
            {{ exceptions.raise_compiler_error("exigo_sync: the landing holds batch " ~ landed ~ "'s copy of " ~ ('queue.' if source_name == 'exigo_queue' else 'dbo.') ~ table ~ ", not batch " ~ exigo_batch_id() ~ "'s (B4); nothing was merged") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
