{#- ---------------------------------------------------------------------------------------------
    Point in time: the versions of a history table valid at an instant. The interval rule is
    written once, here (H3: a version is valid from valid_from, inclusive, to valid_to,
    exclusive; valid_to is NULL while the version is current), so nobody writes it by hand:

      exigo_valid_at(alias, at)
          the predicate, for a point-in-time join:
          join {{ ref('customers_history') }} c
            on c.customer_id = o.customer_id and {{ exigo_valid_at('c', 'o.order_date') }}
      exigo_as_of(entity_or_relation, at, include_deleted=false)
          a derived table of the versions valid at `at` (alias it yourself):
          select * from {{ exigo_as_of('orders', '2026-01-15 08:00') }} o

    entity_or_relation: an entity name ('orders', 'order_statuses', ...: its history model) or a
    relation (ref(...), source(...), or a model of your own with valid_from / valid_to /
    is_deleted). `at`: an ISO timestamp text ('2026-01-15', '2026-01-15 08:00[:00]'), which
    becomes a typed literal, or any SQL expression (a column, current_timestamp, ...). Deletion
    versions (the key no longer existed at `at`) are left out unless include_deleted is true.
    Times are on the source clock (Exigo datetime, no zone).
--------------------------------------------------------------------------------------------- -#}

{#- `at` as SQL: an ISO date / timestamp text becomes a typed literal; anything else is taken
    as an expression. -#}
{% macro exigo_instant(at) -%}
    {%- set text = at | string | trim -%}
    {%- if modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?)?$', text) -%}
        {%- if text | length == 10 -%}{%- set text = text ~ 'T00:00' -%}{%- endif -%}
        {%- if text | length == 16 -%}{%- set text = text ~ ':00' -%}{%- endif -%}
        {{ return(exigo_timestamp_literal(text | replace(' ', 'T'))) }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}

{#- The interval predicate: the version aliased `alias` is valid at `at`. -#}
{% macro exigo_valid_at(alias, at) -%}
    {%- set instant = exigo_instant(at) -%}
    {{ alias }}.valid_from <= {{ instant }} and ({{ alias }}.valid_to is null or {{ alias }}.valid_to > {{ instant }})
{%- endmacro %}

{#- The versions valid at `at`, as a parenthesised derived table. -#}
{% macro exigo_as_of(entity_or_relation, at, include_deleted=false) -%}
    {%- if entity_or_relation is string and entity_or_relation in exigo_entities() -%}
        {%- set relation = ref(entity_or_relation ~ '_history') -%}
    {%- else -%}
        {%- set relation = entity_or_relation -%}
    {%- endif -%}
    (select as_of_version.* from {{ relation }} as_of_version
     where {{ exigo_valid_at('as_of_version', at) }}
     {%- if not include_deleted %}
       and as_of_version.is_deleted = {{ exigo_false() }}
     {%- endif %})
{%- endmacro %}
