{#- Entities by kind (exigo_entities(), generated from the Python catalogue). Macros that mean
    "the queue tables" or "the lookups" ask here, never by entity name. -#}

{#- Entity names of one kind ('replicated' | 'lookup'), or of every kind, in catalogue order. -#}
{% macro exigo_entity_names(kind=none) -%}
    {%- set out = [] -%}
    {%- for name, entry in exigo_entities().items() -%}
        {%- if kind is none or entry['kind'] == kind -%}{%- do out.append(name) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The dbt source an entity's batch rows come from: the queue snapshot for a replicated table,
    the whole dbo table for a lookup (no queue carries lookups; they are small). -#}
{% macro exigo_entity_source(entity) -%}
    {{ return('exigo_dbo' if exigo_entities()[entity]['kind'] == 'lookup' else 'exigo_queue') }}
{%- endmacro %}

{#- An entity's rows joined to its parent entity's rows, warehouse names (order lines to their
    order: `line.order_id = parent_order.order_id`), from the catalogue's parent_keys. -#}
{% macro exigo_parent_join(entity, child_alias, parent_alias) -%}
    {%- set parts = [] -%}
    {%- for pair in exigo_entities()[entity]['parent_keys'] -%}
        {%- do parts.append(child_alias ~ '.' ~ exigo_column_name(pair[0]) ~ ' = ' ~ parent_alias ~ '.' ~ exigo_column_name(pair[1])) -%}
    {%- endfor -%}
    {{ return(parts | join(' and ')) }}
{%- endmacro %}

{#- How the kind names its table in messages. -#}
{% macro exigo_entity_table_label(entity) -%}
    {{ return('lookup table' if exigo_entities()[entity]['kind'] == 'lookup' else 'queue table') }}
{%- endmacro %}
