{#- Physical indexes of the tables this project writes, per layer. Used as
    `config(indexes=exigo_table_indexes(layer, keys))`, so the choice is made at parse time for
    the target being parsed.

    DuckDB: none. dbt-duckdb does create `indexes` (ART indexes), but a unique ART index changes
    how a delete+insert of the same key in one transaction behaves, and the tables are small.
    SQL Server (dbt-sqlserver `indexes` config, 1.10.1+; README "SQL Server"):
      history : unique clustered (history_version_id)  -> the delete+insert's
                `delete ... where history_version_id in (...)` seeks, a duplicate version id fails
                the statement (and with it the model's transaction) instead of entering history;
                nonclustered (keys..., is_current)      -> the per-batch current_rows lookup;
                nonclustered (batch_id)                 -> the current-state model's
                `batch_id > max(batch_id)` range.
      current : unique clustered (keys)                 -> delete+insert on the key seeks; C1.
      rejected: nonclustered (batch_id)                 -> `batch_id not in (...)` of the append.
      changes : unique clustered (keys..., status_seq)  -> the status-change models' delete+insert
                                                           on the key seeks; the grain, enforced;
                nonclustered (batch_id)                 -> their `max(batch_id)`.
    Key columns must be bounded types: SQL Server rejects nvarchar(max) in an index key, hence
    exigo_version_id_type() for history_version_id. -#}
{% macro exigo_table_indexes(layer, keys=[]) -%}
    {{ return(adapter.dispatch('exigo_table_indexes', 'exigo_sync')(layer, keys)) }}
{%- endmacro %}

{% macro default__exigo_table_indexes(layer, keys=[]) -%}
    {{ return([]) }}
{%- endmacro %}

{% macro sqlserver__exigo_table_indexes(layer, keys=[]) -%}
    {%- if layer == 'history' -%}
        {{ return([
            {'columns': ['history_version_id'], 'type': 'clustered', 'unique': true},
            {'columns': keys + ['is_current'], 'type': 'nonclustered'},
            {'columns': ['batch_id'], 'type': 'nonclustered'},
        ]) }}
    {%- elif layer == 'current' -%}
        {{ return([{'columns': keys, 'type': 'clustered', 'unique': true}]) }}
    {%- elif layer == 'changes' -%}
        {{ return([
            {'columns': keys, 'type': 'clustered', 'unique': true},
            {'columns': ['batch_id'], 'type': 'nonclustered'},
        ]) }}
    {%- elif layer == 'rejected' -%}
        {{ return([{'columns': ['batch_id'], 'type': 'nonclustered'}]) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("exigo_sync: no indexes defined for layer '" ~ layer ~ "'") }}
    {%- endif -%}
{%- endmacro %}
