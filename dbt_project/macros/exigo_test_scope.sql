{#- What a batch's contract tests (H3, C1) read: in a batch (`dbt build` of a batch, or any
    command given var exigo_batch_id), only the keys this batch wrote (a row with its batch_id),
    so the checks cost what the batch costs; the whole table in a full check (a plain `dbt test`,
    or var exigo_full_checks: the nightly reconciliation run). A batch writes no other key, so no
    other key can have been broken by it. -#}
{% macro exigo_test_scope(model, key_columns) -%}
    {%- set full = (var('exigo_full_checks', false) | string | lower) in ('true', '1') -%}
    {%- set in_batch = flags.WHICH == 'build' or var('exigo_batch_id', none) is not none -%}
    {%- if full or not in_batch or not execute -%}
        {{ return(model) }}
    {%- endif -%}
    {{ return("(select scoped.* from " ~ model ~ " scoped where exists (select 1 from " ~ model
              ~ " touched where touched.batch_id = " ~ exigo_batch_id() ~ " and "
              ~ exigo_key_join(key_columns, 'touched', 'scoped') ~ "))") }}
{%- endmacro %}
