{#- A validated ISO timestamp literal typed like the source's datetime columns. -#}
{% macro exigo_timestamp_literal(iso_text) -%}
    {{ return(adapter.dispatch('exigo_timestamp_literal', 'exigo_sync')(iso_text)) }}
{%- endmacro %}
{% macro default__exigo_timestamp_literal(iso_text) -%}
    cast('{{ iso_text }}' as timestamp)
{%- endmacro %}
{#- datetime2 first: datetime rejects more than 3 fractional digits in a literal. -#}
{% macro sqlserver__exigo_timestamp_literal(iso_text) -%}
    cast(convert(datetime2, '{{ iso_text }}', 126) as datetime)
{%- endmacro %}
