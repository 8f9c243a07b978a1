{#- How Exigo names become warehouse names (the Python twin: src/exigo_sync/naming.py). The
    reserved names this project adds are generated: macro exigo_reserved_column_names in
    exigo_catalog.sql. -#}

{#- CustomerID -> customer_id, MainAddress1 -> main_address1, IsRMA -> is_rma,
    Other10Total -> other10_total, SMSSubscribeDate -> sms_subscribe_date. -#}
{% macro exigo_snake_case(name) -%}
    {%- set s = modules.re.sub('([A-Z]+)([A-Z][a-z])', '\\1_\\2', name) -%}
    {%- set s = modules.re.sub('([a-z0-9])([A-Z])', '\\1_\\2', s) -%}
    {%- set s = modules.re.sub('[^A-Za-z0-9_]+', '_', s) -%}
    {{ return(modules.re.sub('_+', '_', s).strip('_').lower()) }}
{%- endmacro %}

{#- Warehouse name of a source column: snake_case, and prefixed with `source_` when it would
    clash with a column this project adds (Orders.BatchID would otherwise collide with batch_id).
    reserved: exigo_reserved_column_names(), passed in by callers that name many columns. -#}
{% macro exigo_column_name(name, reserved=none) -%}
    {%- set snake = exigo_snake_case(name) -%}
    {%- if snake in (reserved if reserved is not none else exigo_reserved_column_names()) -%}
        {{ return('source_' ~ snake) }}
    {%- endif -%}
    {{ return(snake) }}
{%- endmacro %}
