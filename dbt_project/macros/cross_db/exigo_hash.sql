{#- Full-length SHA-256, lower-case hex, of a text expression. On SQL Server hashbytes over
    nvarchar(max) has no 8000-byte input limit since 2016. -#}
{% macro exigo_hash(text_expr) -%}
    {{ return(adapter.dispatch('exigo_hash', 'exigo_sync')(text_expr)) }}
{%- endmacro %}
{% macro default__exigo_hash(text_expr) -%}
    sha256({{ text_expr }})
{%- endmacro %}
{% macro sqlserver__exigo_hash(text_expr) -%}
    lower(convert(varchar(64), hashbytes('SHA2_256', cast({{ text_expr }} as nvarchar(max))), 2))
{%- endmacro %}
