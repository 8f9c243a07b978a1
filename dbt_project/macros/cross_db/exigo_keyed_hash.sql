{#- S2 `hash`: lower-case hex HMAC-SHA-256 of a text expression, keyed with EXIGO_SYNC_HASH_KEY
    (src/exigo_sync/hash_key.py), so a hashed value cannot be reversed by hashing candidates.
    The key is never written into SQL: DuckDB calls the function the dbt-duckdb plugin
    exigo_sync.dbt_duckdb_plugin registers (it reads the key from dbt's environment); SQL Server
    reads the key's HMAC pads, which the flow stores for dbt's run, from exigo_sync_keys.hmac_key
    (src/exigo_sync/warehouse/hash_keys.py). DuckDB hashes the UTF-8 text, SQL Server the
    nvarchar's UTF-16LE bytes: hashes compare within one warehouse. -#}
{% macro exigo_keyed_hash(text_expr) -%}
    {{ return(adapter.dispatch('exigo_keyed_hash', 'exigo_sync')(text_expr)) }}
{%- endmacro %}
{% macro default__exigo_keyed_hash(text_expr) -%}
    exigo_hmac_sha256({{ text_expr }})
{%- endmacro %}
{% macro sqlserver__exigo_keyed_hash(text_expr) -%}
    {%- set keys = api.Relation.create(database=target.database, schema='exigo_sync_keys', identifier='hmac_key') -%}
    lower(convert(varchar(64), hashbytes('SHA2_256',
        (select k.opad from {{ keys }} k where k.key_name = 'exigo_hash')
        + hashbytes('SHA2_256', (select k.ipad from {{ keys }} k where k.key_name = 'exigo_hash')
            + cast(cast({{ text_expr }} as nvarchar(max)) as varbinary(max)))), 2))
{%- endmacro %}

{#- Execution time, before a model hashes: the key must be there. DuckDB: the function itself
    fails naming EXIGO_SYNC_HASH_KEY when dbt's environment lacks it. SQL Server: the flow stores
    the pads only for its own dbt run. -#}
{% macro exigo_require_hash_key(columns) -%}
    {{ return(adapter.dispatch('exigo_require_hash_key', 'exigo_sync')(columns)) }}
{%- endmacro %}
{% macro default__exigo_require_hash_key(columns) -%}
{%- endmacro %}
{% macro sqlserver__exigo_require_hash_key(columns) -%}
    {%- set keys = adapter.get_relation(database=target.database, schema='exigo_sync_keys', identifier='hmac_key') -%}
    {%- set found = run_query("select count(*) from " ~ keys ~ " where key_name = 'exigo_hash'").rows[0][0] if keys is not none else 0 -%}
    {%- do exigo_end_read_transaction() -%}
    {%- if (found | int) != 1 -%}
        {{ exceptions.raise_compiler_error("exigo_sync: the sensitive-column policy hashes " ~ (columns | join(', ')) ~ ", and `hash` is keyed: no HMAC key is stored for this run (exigo-sync run stores it from EXIGO_SYNC_HASH_KEY or EXIGO_SYNC_HASH_KEY_BLOCK) (S2); nothing was merged") }}
    {%- endif -%}
{%- endmacro %}
