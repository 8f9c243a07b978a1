{#- The incremental status-change models against current state: per key, the last episode holds
    the key's current status, and it is open exactly when the key is live (a deleted key's last
    episode ended by its deletion); every key of current state has episodes. In a batch, only the
    keys the batch wrote (exigo_test_scope), so a batch pays for its own keys; every key in a
    full check. Failing rows: the key and what disagrees. -#}
{%- set pairs = [
    ('orders', 'order_id', 'order_status_id', ref('orders_current'), ref('int_order_status_changes')),
    ('customers', 'customer_id', 'customer_status_id', ref('customers_current'), ref('int_customer_status_changes')),
] -%}
with
{%- for entity, key, status, current, changes in pairs %}
{{ entity }}_keys as (
    select cur.{{ key }} as key_value, cur.{{ status }} as current_status, cur.is_deleted
    from {{ exigo_test_scope(current, [key]) }} cur
),

{{ entity }}_last as (
    select
        ch.{{ key }} as key_value,
        ch.{{ status }} as last_status,
        ch.is_current_status,
        ch.ended_by_deletion,
        row_number() over (partition by ch.{{ key }} order by ch.status_seq desc) as from_last
    from {{ changes }} ch
    where exists (select 1 from {{ entity }}_keys k where k.key_value = ch.{{ key }})
),
{%- endfor %}

disagreements as (
    {%- for entity, key, status, current, changes in pairs %}
    {{ 'union all' if not loop.first }}
    select
        cast('{{ entity }}' as {{ exigo_type_string() }}) as entity,
        k.key_value,
        k.current_status,
        l.last_status,
        k.is_deleted,
        l.is_current_status,
        l.ended_by_deletion
    from {{ entity }}_keys k
    left join {{ entity }}_last l
        on l.key_value = k.key_value and l.from_last = 1
    {%- endfor %}
)

select *
from disagreements
where last_status is null
   or last_status <> current_status
   or (is_deleted = {{ exigo_false() }} and is_current_status = {{ exigo_false() }})
   or (is_deleted = {{ exigo_true() }} and ended_by_deletion = {{ exigo_false() }})
