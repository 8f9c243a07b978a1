{#- End the read-only transaction a model's compile-time introspection opened.

    adapter.get_columns_in_relation and the B3 probe go through dbt statements that begin the
    connection's transaction (auto_begin). On SQL Server, with dbt_sqlserver_use_dbt_transactions,
    that transaction would stay open into the materialization, and dbt-sqlserver 1.11 builds an
    incremental model's __dbt_tmp view and table (catalog DDL) deliberately outside any
    transaction: held until the model commits, those catalog locks deadlock a second worker
    (error 1205, threads > 1). Nothing has been written at this point, so committing loses
    nothing; the merge itself still runs in one transaction, which the adapter begins at its next
    statement (README "SQL Server"). DuckDB: nothing to do. -#}
{% macro exigo_end_read_transaction() -%}
    {{ return(adapter.dispatch('exigo_end_read_transaction', 'exigo_sync')()) }}
{%- endmacro %}
{% macro default__exigo_end_read_transaction() -%}
{%- endmacro %}
{% macro sqlserver__exigo_end_read_transaction() -%}
    {%- if execute -%}
        {%- do adapter.commit_if_open() -%}
    {%- endif -%}
{%- endmacro %}
