{#- ---------------------------------------------------------------------------------------------
    SCD type 2 history for one entity (H1-H7). Incremental, delete+insert on history_version_id:
    each run emits (1) the new versions opened by this batch and (2) the previous current rows
    re-emitted closed; delete+insert then swaps those closed rows in by their version id.

    incoming   = staged rows of this batch + deletion candidates (H7)
    per key, against the key's current history row:
      no current row                                  -> new version
      version_time < current valid_from               -> ignored (stale, H5)
      same row_hash and same is_deleted               -> nothing (H4)
      otherwise                                       -> new version from version_time; the
                                                         current row closes at that instant (H3)
--------------------------------------------------------------------------------------------- -#}

{#- Introspect a model's real table by name (not through ref/this, which unit tests replace with
    fixtures): returns {lower name: Column}. Empty when the table does not exist yet. -#}
{% macro exigo_model_columns(model_name) -%}
    {%- set found = {} -%}
    {%- if execute -%}
        {#- Unit tests render with an empty graph: fall back to the layer naming convention. -#}
        {%- set node = (graph.get('nodes') or {}).get('model.' ~ project_name ~ '.' ~ model_name) -%}
        {%- if node is not none -%}
            {%- set location = [node.database, node.schema, node.alias] -%}
        {%- else -%}
            {%- set layer = 'exigo_staging' if model_name.startswith('stg_') else 'exigo_history' -%}
            {%- set location = [target.database, generate_schema_name(layer, none) | trim, model_name] -%}
        {%- endif -%}
        {%- set rel = adapter.get_relation(database=location[0], schema=location[1], identifier=location[2]) -%}
        {%- if rel is not none -%}
            {%- for col in adapter.get_columns_in_relation(rel) -%}
                {%- do found.update({col.name | lower: col}) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- do exigo_end_read_transaction() -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}

{% macro exigo_history_meta_columns() -%}
    {{ return(exigo_reserved_column_names()) }}
{%- endmacro %}

{#- Data columns of an entity's history: documented (after S2) + any extra column ever staged
    or already in history (B3: added columns are carried; vanished ones stay, NULL from then on).
    Returns [{name, type, in_staging, in_history}]. -#}
{% macro exigo_history_columns(entity, key_names) -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set staged = exigo_model_columns('stg_exigo__' ~ entity) -%}
    {%- set history = exigo_model_columns(entity ~ '_history') -%}
    {%- set meta = exigo_history_meta_columns() -%}
    {%- set out = [] -%}
    {%- set seen = [] -%}
    {%- for c in exigo_documented_columns(entity) -%}
        {%- if c.name not in key_names -%}
            {%- do seen.append(c.name) -%}
            {%- do out.append({'name': c.name, 'type': c.type, 'in_staging': (not staged) or (c.name in staged), 'in_history': c.name in history}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for name, col in staged.items() -%}
        {%- if name not in seen and name not in key_names and name not in meta -%}
            {%- do seen.append(name) -%}
            {%- do out.append({'name': name, 'type': col.data_type, 'in_staging': true, 'in_history': name in history}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for name, col in history.items() -%}
        {%- if name not in seen and name not in key_names and name not in meta -%}
            {%- do seen.append(name) -%}
            {%- do out.append({'name': name, 'type': col.data_type, 'in_staging': false, 'in_history': true}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- `a.x,\n a.y,\n ...` (each name followed by a comma): the select lists the CTEs share. -#}
{% macro exigo_column_list(names, alias=none) -%}
    {%- for name in names %}
        {{ alias ~ '.' if alias }}{{ name }},
    {%- endfor %}
{%- endmacro %}

{% macro exigo_scd2_history(entity) -%}
    {%- set spec = exigo_entities()[entity] -%}
    {%- set key_names = [] -%}
    {%- for k in spec['keys'] -%}{%- do key_names.append(exigo_snake_case(k)) -%}{%- endfor -%}
    {{- config(indexes=exigo_table_indexes('history', key_names)) -}}
    {%- set columns = exigo_history_columns(entity, key_names) -%}
    {%- set column_names = columns | map(attribute='name') | list -%}
    {%- set staging = ref('stg_exigo__' ~ entity) -%}
    {%- set ts = exigo_type('datetime') -%}
    {%- set key_join = [] -%}
    {%- for k in key_names -%}{%- do key_join.append('{l}.' ~ k ~ ' = {r}.' ~ k) -%}{%- endfor -%}
    {%- set key_text = [] -%}
    {%- for k in key_names -%}
        {%- if not loop.first -%}{%- do key_text.append("'|'") -%}{%- endif -%}
        {%- do key_text.append(exigo_text(k)) -%}
    {%- endfor -%}
    {%- set sweep = entity in var('exigo_deletion_sweep_entities', []) -%}
    {%- set refreshed_at = exigo_batch_refreshed_at() -%}
    {# Called unconditionally (they only depend on the entity) so dbt records the dependencies
        at parse time, where is_incremental() is false. #}
    {%- if entity == 'order_details' -%}{%- set parent_stage = ref('stg_exigo__orders') -%}{%- endif -%}
    {#- Every history model waits for ALL staging models: a bad queue table (B3/B4) fails its
        staging model, and then no entity merges anything in that batch. -#}
    {%- for other in exigo_entities().keys() -%}{%- set _ = ref('stg_exigo__' ~ other) -%}{%- endfor -%}
    {%- if sweep -%}{%- set sweep_source = source('exigo_dbo', spec['table']) -%}{%- endif -%}

with staged as (
    select
        {{- exigo_column_list(key_names) }}
        {%- for c in columns %}
        {% if c.in_staging %}{{ c.name }}{% else %}cast(null as {{ c.type }}){% endif %} as {{ c.name }},
        {%- endfor %}
        version_time,
        row_hash,
        {{ exigo_false() }} as is_deleted
    from {{ staging }}
),

{%- if is_incremental() %}

current_rows as (
    select
        {{- exigo_column_list(key_names) }}
        {%- for c in columns %}
        {% if c.in_history %}{{ c.name }}{% else %}cast(null as {{ c.type }}){% endif %} as {{ c.name }},
        {%- endfor %}
        valid_from,
        is_deleted,
        deleted_at,
        row_hash,
        batch_id,
        history_version_id
    from {{ this }}
    where is_current = {{ exigo_true() }}
),

{#- H7: deletion candidates carry the previous version's columns and hash, is_deleted true. -#}
deletion_candidates as (
    select
        {{- exigo_column_list(key_names, 'cur') }}
        {{- exigo_column_list(column_names, 'cur') }}
        {%- if entity == 'order_details' %}
        parent_order.version_time as version_time,
        {%- else %}
        {{ exigo_timestamp_literal(refreshed_at) }} as version_time,
        {%- endif %}
        cur.row_hash,
        {{ exigo_true() }} as is_deleted
    from current_rows cur
    {%- if entity == 'order_details' %}
    {# A changed order arrives with ALL its current lines: a live line of an order in this batch
        that is missing from the batch was removed at the source. #}
    inner join {{ parent_stage }} parent_order
        on parent_order.order_id = cur.order_id
    where cur.is_deleted = {{ exigo_false() }}
      and not exists (
          select 1 from staged s
          where {{ key_join | join(' and ') | replace('{l}', 's') | replace('{r}', 'cur') }}
      )
    {%- elif sweep %}
    {# Physical deletions: a live key gone from the source table and absent from this batch.
        Dated at the batch's refresh (the source keeps no deletion time). #}
    where cur.is_deleted = {{ exigo_false() }}
      and not exists (
          select 1 from {{ sweep_source }} src
          where {% for k in spec['keys'] %}src.{{ adapter.quote(k) }} = cur.{{ key_names[loop.index0] }}{{ ' and ' if not loop.last }}{% endfor %}
      )
      and not exists (
          select 1 from staged s
          where {{ key_join | join(' and ') | replace('{l}', 's') | replace('{r}', 'cur') }}
      )
    {%- else %}
    where 1 = 0
    {%- endif %}
),

incoming as (
    select * from staged
    union all
    select * from deletion_candidates
),

compared as (
    select
        inc.*,
        case
            when cur.{{ key_names[0] }} is null then 'new'
            when inc.version_time < cur.valid_from then 'stale'
            when inc.row_hash = cur.row_hash and inc.is_deleted = cur.is_deleted then 'same'
            else 'change'
        end as transition
    from incoming inc
    left join current_rows cur
        on {{ key_join | join(' and ') | replace('{l}', 'cur') | replace('{r}', 'inc') }}
),

{%- else %}

compared as (
    select staged.*, 'new' as transition from staged
),

{%- endif %}

new_versions as (
    select
        {{- exigo_column_list(key_names) }}
        {{- exigo_column_list(column_names) }}
        version_time as valid_from,
        cast(null as {{ ts }}) as valid_to,
        {{ exigo_true() }} as is_current,
        is_deleted,
        case when is_deleted = {{ exigo_true() }} then version_time else cast(null as {{ ts }}) end as deleted_at,
        row_hash,
        cast({{ exigo_batch_id() }} as {{ exigo_type('int') }}) as batch_id,
        cast({{ exigo_concat_text(key_text + ["'@'", exigo_text(exigo_batch_id() ~ '')]) }} as {{ exigo_version_id_type() }}) as history_version_id
    from compared
    where transition in ('new', 'change')
)

select * from new_versions
{%- if is_incremental() %}

union all

{# The previous current row, closed where the new version starts. If it was opened by this very
    batch id (a re-run of the same batch with different data) the new row replaces it instead. #}
select
    {{- exigo_column_list(key_names, 'cur') }}
    {{- exigo_column_list(column_names, 'cur') }}
    cur.valid_from,
    nv.valid_from as valid_to,
    {{ exigo_false() }} as is_current,
    cur.is_deleted,
    cur.deleted_at,
    cur.row_hash,
    cur.batch_id,
    cur.history_version_id
from current_rows cur
inner join new_versions nv
    on {{ key_join | join(' and ') | replace('{l}', 'cur') | replace('{r}', 'nv') }}
where cur.history_version_id <> nv.history_version_id
{%- endif %}
{%- endmacro %}
