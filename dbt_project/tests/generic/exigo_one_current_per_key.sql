{#- H3: every key of a history table has exactly one is_current row. Failing rows: the keys. -#}
{% test exigo_one_current_per_key(model, key_columns) %}
select
    {{ key_columns | join(', ') }},
    sum(case when is_current = {{ exigo_true() }} then 1 else 0 end) as current_rows
from {{ exigo_test_scope(model, key_columns) }} scoped_model
group by {{ key_columns | join(', ') }}
having sum(case when is_current = {{ exigo_true() }} then 1 else 0 end) <> 1
{% endtest %}
