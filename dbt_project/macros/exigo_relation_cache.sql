{#- dbt caches a schema's relations the first time a node asks for one of them, and counts the
    schema as cached from the first relation it adds: a second thread asking in that moment reads
    a partial list (dbt-adapters' RelationsCache), and a table the flow wrote looks missing, e.g.
    the landing's record of this batch ("the landing holds batch None's copy", the batch fails) or
    a `__reopen` table (keys back at the source would not reopen). The schemas the flow writes
    are not dbt's, so dbt does not list them before its threads start: this on-run-start hook
    does, in dbt's main thread. -#}
{% macro exigo_cache_flow_schemas() -%}
    {%- if execute -%}
        {%- for schema in ['exigo_sync', 'exigo_landing', 'exigo_landing_dbo', 'exigo_sync_keys'] -%}
            {#- Any name: finding it lists (and caches) the whole schema. -#}
            {%- do adapter.get_relation(database=target.database, schema=schema, identifier='any') -%}
        {%- endfor -%}
        {%- do exigo_end_read_transaction() -%}
    {%- endif -%}
{%- endmacro %}
