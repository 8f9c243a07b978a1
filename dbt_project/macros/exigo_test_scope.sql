{#- What a batch's contract tests (H3, C1) read: in a batch (`dbt build` of a batch, or any
    command given var exigo_batch_id), only the keys this batch wrote (a row with its batch_id),
    so the checks cost what the batch costs; the whole table in a full check (a plain `dbt test`,
    or var exigo_full_checks: the nightly reconciliation run). A batch writes no other key, so no
    other key can have been broken by it. -#}
{% macro exigo_test_scope(model, key_columns) -%}
    {%- if exigo_full_checks() -%}
        {{ return(model) }}
    {%- endif -%}
    {{ return("(select scoped.* from " ~ model ~ " scoped where exists (select 1 from " ~ model
              ~ " touched where touched.batch_id = " ~ exigo_batch_id() ~ " and "
              ~ exigo_key_join(key_columns, 'touched', 'scoped') ~ "))") }}
{%- endmacro %}

{#- True in a full check (`dbt test`, or var exigo_full_checks: the nightly reconciliation run),
    false in a batch (`dbt build` with a batch). Tests that cannot be scoped
    to a batch's keys (whole-table sums, aggregate grains) run only in a full check: in a batch
    their SQL is a query with no rows (exigo_full_check_only), so a batch pays nothing for
    them and dbt's partial parsing stays warm (decided at execution, not by `enabled`). -#}
{% macro exigo_full_checks() -%}
    {%- set full = (var('exigo_full_checks', false) | string | lower) in ('true', '1') -%}
    {%- set in_batch = flags.WHICH == 'build' or var('exigo_batch_id', none) is not none -%}
    {{ return(full or not in_batch or not execute) }}
{%- endmacro %}

{#- The failing-rows query of a full-check-only test: `sql` in a full check; in a batch, a query
    with no rows that reads nothing. -#}
{% macro exigo_full_check_only(sql) -%}
    {%- if exigo_full_checks() -%}
        {{ sql }}
    {%- else -%}
        select 1 as skipped_in_batch where 1 = 0
    {%- endif -%}
{%- endmacro %}
