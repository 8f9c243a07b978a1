{#- C1: at most one row per (possibly composite) key. Failing rows: duplicated keys. -#}
{% test exigo_unique_key(model, key_columns) %}
select {{ key_columns | join(', ') }}, count(*) as row_count
from {{ exigo_test_scope(model, key_columns) }} scoped_model
group by {{ key_columns | join(', ') }}
having count(*) > 1
{% endtest %}
