{#- The batch being merged: its id (monotonic, from the ledger) and the source-clock time its
    queue.Refresh began. Neither is a dbt var, so the vars stay the same from batch to batch and
    partial parsing stays warm. A flow run hands them to dbt's process in its environment
    (EXIGO_SYNC_BATCH_ID, EXIGO_SYNC_BATCH_REFRESHED_AT), read only at execution time; the run's
    on-run-start hook checks once that they name the batch the ledger has in flight. Without
    them dbt reads that batch from the ledger (status `refreshed`: the flow holds the run lock,
    so there is exactly one). Vars exigo_batch_id / exigo_batch_refreshed_at override both
    (tests, a hand-run `dbt build`). At parse time, and for commands that only read (compile,
    docs generate, show, list), a placeholder is returned; when models are built a missing
    batch is an error, never a silent default: a wrong batch id would corrupt
    history_version_id. -#}
{% macro exigo_batch_vars_required() -%}
    {{ return(execute and flags.WHICH not in ('compile', 'generate', 'docs', 'show', 'list', 'ls', 'parse')) }}
{%- endmacro %}

{#- [batch_id, refresh_started_at ISO] of the batch being merged: the flow's, else the ledger's. -#}
{% macro exigo_in_flight_batch() -%}
    {%- if env_var('EXIGO_SYNC_BATCH_ID', '') -%}
        {{ return(exigo_handed_batch()) }}
    {%- endif -%}
    {{ return(exigo_ledger_batch()) }}
{%- endmacro %}

{#- [batch_id, refresh_started_at ISO] as the flow handed them to dbt's process. -#}
{% macro exigo_handed_batch() -%}
    {%- set batch_id = env_var('EXIGO_SYNC_BATCH_ID', '') | trim -%}
    {%- if not modules.re.match('^[0-9]+$', batch_id) -%}
        {{ exceptions.raise_compiler_error("exigo_sync: EXIGO_SYNC_BATCH_ID must be a batch id (a non-negative integer), got " ~ batch_id) }}
    {%- endif -%}
    {{ return([batch_id | int, env_var('EXIGO_SYNC_BATCH_REFRESHED_AT', '') | trim]) }}
{%- endmacro %}

{#- [batch_id, refresh_started_at ISO] of the ledger's in-flight batch; raises unless exactly one. -#}
{% macro exigo_ledger_batch() -%}
    {%- set ledger = adapter.get_relation(database=target.database, schema='exigo_sync', identifier='batches') -%}
    {%- set rows = [] -%}
    {%- if ledger is not none -%}
        {%- set rows = run_query("select batch_id, refresh_started_at from " ~ ledger ~ " where status = 'refreshed'").rows -%}
    {%- endif -%}
    {%- do exigo_end_read_transaction() -%}
    {%- if rows | length != 1 -%}
        {{ exceptions.raise_compiler_error("exigo_sync: no batch to merge: the ledger (exigo_sync.batches) has " ~ (rows | length) ~ " batch(es) in status 'refreshed', exigo-sync run leaves exactly one; to run dbt by hand pass --vars '{exigo_batch_id: N, exigo_batch_refreshed_at: ...}'") }}
    {%- endif -%}
    {{ return([rows[0][0] | int, rows[0][1].isoformat()]) }}
{%- endmacro %}

{#- on-run-start: the batch the flow handed over is the one the ledger has in flight (same id,
    same refresh time), checked once before any node runs, so no node merges under another
    batch's id. -#}
{% macro exigo_check_batch_in_flight() -%}
    {%- if exigo_batch_vars_required() and env_var('EXIGO_SYNC_BATCH_ID', '') -%}
        {%- set handed = exigo_handed_batch() -%}
        {%- set in_flight = exigo_ledger_batch() -%}
        {%- if handed != in_flight -%}
            {{ exceptions.raise_compiler_error("exigo_sync: dbt was handed batch " ~ handed[0] ~ " (refresh began " ~ handed[1] ~ "), but the ledger's batch in flight is batch " ~ in_flight[0] ~ " (refresh began " ~ in_flight[1] ~ "); nothing was merged") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro exigo_batch_id() -%}
    {%- set value = var('exigo_batch_id', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- if exigo_batch_vars_required() -%}
            {{ return(exigo_in_flight_batch()[0]) }}
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
            {%- set value = exigo_in_flight_batch()[1] -%}
        {%- else -%}
            {{ return('2000-01-01T00:00:00') }}
        {%- endif -%}
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
    {%- do run_query("copy (select 1 as paused) to " ~ exigo_string_literal(marker) ~ " (format csv)") -%}
    select sum(hash(i)) from range(1000000000000) t(i)
{%- endmacro %}

{% macro sqlserver__exigo_fault_pause(marker) -%}
    {{ exceptions.raise_compiler_error("exigo_sync: the pause fault mode is for DuckDB test runs") }}
{%- endmacro %}

{#- A table of the flow's ledger (schema exigo_sync: batches, batch_entity_stats), found by name
    at execution time (it is the flow's table, not a dbt model); none at parse time or before
    the flow first ran. -#}
{% macro exigo_ledger_relation(identifier) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set rel = adapter.get_relation(database=target.database, schema='exigo_sync', identifier=identifier) -%}
    {%- do exigo_end_read_transaction() -%}
    {{ return(rel) }}
{%- endmacro %}
