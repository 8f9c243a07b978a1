{#- R2 fencing in dbt: before each model writes, the run's lock row must still carry the token the
    flow passed in EXIGO_SYNC_LOCK_TOKEN. A run that was paused (SIGSTOP, a sleeping laptop) past
    the stale time and taken over, then resumed, stops here instead of writing next to the run
    that took over. The variables are read only at execution time (never at parse time), so
    they do not disturb partial parsing. Outside a flow run (no token) it does nothing. -#}
{% macro exigo_assert_lock_held() -%}
    {%- if execute -%}
        {%- set token = env_var('EXIGO_SYNC_LOCK_TOKEN', '') -%}
        {%- set name = env_var('EXIGO_SYNC_LOCK_NAME', '') -%}
        {%- if token -%}
            {%- if not modules.re.match('^[0-9a-f]{32}$', token) or not modules.re.match('^[A-Za-z0-9_.:-]{1,200}$', name) -%}
                {{ exceptions.raise_compiler_error("exigo_sync: EXIGO_SYNC_LOCK_TOKEN / EXIGO_SYNC_LOCK_NAME are not a lock the flow hands out") }}
            {%- endif -%}
            {%- set lock = adapter.get_relation(database=target.database, schema='exigo_sync', identifier='run_lock') -%}
            {%- set held = run_query("select count(*) from " ~ lock ~ " where lock_name = " ~ exigo_string_literal(name) ~ " and token = " ~ exigo_string_literal(token) ~ " and released_at is null").rows[0][0] if lock is not none else 0 -%}
            {%- do exigo_end_read_transaction() -%}
            {%- if (held | int) != 1 -%}
                {{ exceptions.raise_compiler_error("exigo_sync: this run lost the lock '" ~ name ~ "' to another run, which redoes this batch's window; stopping before " ~ this ~ " writes anything (R2)") }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
