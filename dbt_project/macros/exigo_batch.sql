{#- Batch metadata passed by the flow with --vars. At parse time, and for commands that only read
    (compile, docs generate, show, list), a placeholder is returned so they work without a batch;
    when models are built a missing var is an error, never a silent default: a wrong batch id
    would corrupt history_version_id. -#}
{% macro exigo_batch_vars_required() -%}
    {{ return(execute and flags.WHICH not in ('compile', 'generate', 'docs', 'show', 'list', 'ls', 'parse')) }}
{%- endmacro %}

{% macro exigo_batch_id() -%}
    {%- set value = var('exigo_batch_id', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- if exigo_batch_vars_required() -%}
            {{ exceptions.raise_compiler_error("exigo_sync: dbt var 'exigo_batch_id' is required (the flow passes it with --vars '{exigo_batch_id: N, exigo_batch_refreshed_at: ...}')") }}
        {%- endif -%}
        {{ return(0) }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]+$', value | string | trim) -%}
        {{ exceptions.raise_compiler_error("exigo_sync: dbt var 'exigo_batch_id' must be a non-negative integer, got " ~ (value | string)) }}
    {%- endif -%}
    {{ return(value | int) }}
{%- endmacro %}

{#- Source-clock time at which this batch's queue.Refresh began (ISO 8601, no zone). Used as the
    time of deletions found by the sweep. Validated strictly because it is inlined into SQL. -#}
{% macro exigo_batch_refreshed_at() -%}
    {%- set value = var('exigo_batch_refreshed_at', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- if exigo_batch_vars_required() -%}
            {{ exceptions.raise_compiler_error("exigo_sync: dbt var 'exigo_batch_refreshed_at' is required (source-clock ISO timestamp of the batch's queue.Refresh)") }}
        {%- endif -%}
        {{ return('2000-01-01T00:00:00') }}
    {%- endif -%}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?$', text) -%}
        {{ exceptions.raise_compiler_error("exigo_sync: dbt var 'exigo_batch_refreshed_at' must be an ISO timestamp without zone, got " ~ text) }}
    {%- endif -%}
    {{ return(text | replace(' ', 'T')) }}
{%- endmacro %}

{#- Fault injection for recovery tests (R1, R4): when env var EXIGO_SYNC_FAULT equals `name`, the
    hook raises, simulating a crash at that point of the batch (e.g. 'before_current': history
    merged, current-state not). With EXIGO_SYNC_FAULT_MODE=pause it instead touches the file
    EXIGO_SYNC_FAULT_MARKER and runs a query that never ends, so a test can stop or kill the run
    while dbt is busy in the warehouse. Renders to nothing otherwise. Never set in production. -#}
{% macro exigo_fault_point(name) -%}
    {%- if execute and env_var('EXIGO_SYNC_FAULT', '') == name -%}
        {%- if env_var('EXIGO_SYNC_FAULT_MODE', 'raise') == 'pause' -%}
            {{ adapter.dispatch('exigo_fault_pause', 'exigo_sync')(env_var('EXIGO_SYNC_FAULT_MARKER')) }}
        {%- else -%}
            {{ exceptions.raise_compiler_error("exigo_sync: injected fault at '" ~ name ~ "' (EXIGO_SYNC_FAULT)") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro default__exigo_fault_pause(marker) -%}
    {%- do run_query("copy (select 1 as paused) to '" ~ marker ~ "' (format csv)") -%}
    select sum(hash(i)) from range(1000000000000) t(i)
{%- endmacro %}

{% macro sqlserver__exigo_fault_pause(marker) -%}
    {{ exceptions.raise_compiler_error("exigo_sync: the pause fault mode is for DuckDB test runs") }}
{%- endmacro %}
