{#- Boolean literals: DuckDB true / false, SQL Server bit. -#}
{% macro exigo_true() -%}
    {{ return(adapter.dispatch('exigo_true', 'exigo_sync')()) }}
{%- endmacro %}
{% macro default__exigo_true() -%}true{%- endmacro %}
{% macro sqlserver__exigo_true() -%}cast(1 as bit){%- endmacro %}

{% macro exigo_false() -%}
    {{ return(adapter.dispatch('exigo_false', 'exigo_sync')()) }}
{%- endmacro %}
{% macro default__exigo_false() -%}false{%- endmacro %}
{% macro sqlserver__exigo_false() -%}cast(0 as bit){%- endmacro %}
