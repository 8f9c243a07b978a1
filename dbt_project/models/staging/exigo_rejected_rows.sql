-- B1: queue rows that cannot be merged (NULL key, NULL version time, order line whose parent order
-- is not in the batch), kept with the (S2-policy-applied) raw row. Append-only; a re-run of the
-- same batch id adds nothing twice.
{{ config(indexes=exigo_table_indexes('rejected')) }}
{%- set parts = [] -%}
{%- for entity in exigo_entities().keys() -%}{{ exigo_register_sources(entity) }}{%- endfor -%}
{%- if execute -%}
    {%- for entity in exigo_entities().keys() -%}
        {%- do parts.append(exigo_rejected_rows_sql(entity)) -%}
    {%- endfor -%}
{%- endif %}

select * from (
{%- if parts %}
    {{ parts | join('\n    union all\n') }}
{%- else %}
    select
        cast(null as {{ exigo_type_string() }}) as entity,
        cast(null as {{ exigo_type('int') }}) as batch_id,
        cast(null as {{ exigo_type_string() }}) as reason,
        cast(null as {{ exigo_type_string() }}) as raw_row,
        {{ dbt.current_timestamp() }} as rejected_at
{%- endif %}
) rejected
{%- if is_incremental() %}
where batch_id not in (select batch_id from {{ this }})
{%- endif %}
