{#- ---------------------------------------------------------------------------------------------
    Staging: one macro turns a queue snapshot table into the typed, policy-applied, hashed and
    de-duplicated rows of one batch. Column knowledge comes from two places:
      (a) the documented columns in models/staging/_exigo__sources.yml (SQL Server data_type), and
      (b) the columns actually present in the queue table, read at execution time.
    Documented-but-missing columns become typed NULLs (B3) unless required (B4: error);
    undocumented columns are carried with their own type (B3). Uncastable values fail (B3).
--------------------------------------------------------------------------------------------- -#}

{#- CustomerID -> customer_id, MainAddress1 -> main_address1, IsRMA -> is_rma,
    Other10Total -> other10_total, SMSSubscribeDate -> sms_subscribe_date. -#}
{% macro exigo_snake_case(name) -%}
    {%- set s = modules.re.sub('([A-Z]+)([A-Z][a-z])', '\\1_\\2', name) -%}
    {%- set s = modules.re.sub('([a-z0-9])([A-Z])', '\\1_\\2', s) -%}
    {%- set s = modules.re.sub('[^A-Za-z0-9_]+', '_', s) -%}
    {{ return(modules.re.sub('_+', '_', s).strip('_').lower()) }}
{%- endmacro %}

{#- Warehouse name of a source column: snake_case, and prefixed with `source_` when it would
    clash with a column this project adds (Orders.BatchID would otherwise collide with batch_id). -#}
{% macro exigo_column_name(name) -%}
    {%- set snake = exigo_snake_case(name) -%}
    {%- if snake in exigo_reserved_column_names() -%}
        {{ return('source_' ~ snake) }}
    {%- endif -%}
    {{ return(snake) }}
{%- endmacro %}

{% macro exigo_reserved_column_names() -%}
    {{ return(['batch_id', 'version_time', 'row_hash', 'source_row_count', 'is_tie_broken',
               'valid_from', 'valid_to', 'is_current', 'is_deleted', 'deleted_at',
               'history_version_id', 'reject_reason', 'raw_row', 'transition']) }}
{%- endmacro %}

{#- The queue tables and the entity each feeds (key columns, version time, parent). -#}
{% macro exigo_entities() -%}
    {{ return({
        'customers':         {'table': 'Customers',        'keys': ['CustomerID']},
        'orders':            {'table': 'Orders',           'keys': ['OrderID']},
        'order_details':     {'table': 'OrderDetails',     'keys': ['OrderID', 'OrderLine'], 'parent': 'orders'},
        'payments':          {'table': 'Payments',         'keys': ['PaymentID']},
        'customer_accounts': {'table': 'CustomerAccounts', 'keys': ['CustomerID']},
        'customer_sites':    {'table': 'CustomerSites',    'keys': ['CustomerID']},
    }) }}
{%- endmacro %}

{#- The documented queue table (macro exigo_catalog, generated from the same catalogue as the
    sources YAML; unit tests render without the dbt graph, so the graph cannot be the source).
    Returns {database, schema, identifier, keys, required, columns: [{name, data_type}]}. -#}
{% macro exigo_source_node(source_name, table) -%}
    {%- set entry = exigo_catalog().get(table) -%}
    {%- if entry is none -%}
        {{ exceptions.raise_compiler_error("exigo_sync: queue table " ~ table ~ " is not documented") }}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for c in entry['columns'] -%}{%- do columns.append({'name': c[0], 'data_type': c[1]}) -%}{%- endfor -%}
    {%- set location = exigo_source_location(source_name) -%}
    {{ return({'database': location.database, 'schema': location.schema,
               'identifier': table, 'keys': entry['keys'], 'required': entry['required'], 'columns': columns}) }}
{%- endmacro %}

{#- S2: treatment of one source column: drop | mask | hash | keep (default keep). -#}
{% macro exigo_sensitive_policy(table, column) -%}
    {%- set policy = var('exigo_sensitive_columns', {}) -%}
    {%- set per_table = policy.get(table, {}) or {} -%}
    {%- for name, treatment in per_table.items() -%}
        {%- if name | lower == column | lower -%}
            {%- if treatment not in ('drop', 'mask', 'hash', 'keep') -%}
                {{ exceptions.raise_compiler_error("exigo_sync: exigo_sensitive_columns." ~ table ~ "." ~ name ~ " must be drop, mask, hash or keep, got " ~ treatment) }}
            {%- endif -%}
            {{ return(treatment) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return('keep') }}
{%- endmacro %}

{#- Masked and hashed values are text, whatever the source type. -#}
{% macro exigo_policy_type(treatment, warehouse_type) -%}
    {{ return(exigo_type_string() if treatment in ('mask', 'hash') else warehouse_type) }}
{%- endmacro %}

{#- Documented columns that survive the S2 policy, as staged: [{source, name, type}]. Needs no
    database, so history models (and unit tests) can rely on it. -#}
{% macro exigo_documented_columns(entity) -%}
    {%- set table = exigo_entities()[entity]['table'] -%}
    {%- set node = exigo_source_node('exigo_queue', table) -%}
    {%- set out = [] -%}
    {%- for col in node.columns -%}
        {%- if exigo_sensitive_policy(table, col.name) != 'drop' -%}
            {%- set treatment = exigo_sensitive_policy(table, col.name) -%}
            {%- do out.append({'source': col.name, 'name': exigo_column_name(col.name), 'type': exigo_policy_type(treatment, exigo_type(col.data_type))}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- H1 row hash: for every column in a fixed (alphabetical) order, name + length + value when
    non-null, nothing when NULL: NULL differs from '', and a column added at the source that is
    still all-NULL leaves existing hashes unchanged. Full SHA-256 over the whole text, never
    truncated (exigo_concat_text: no 8000-byte CONCAT limit on SQL Server). -#}
{% macro exigo_row_hash(columns) -%}
    {%- set parts = [] -%}
    {%- for c in columns | sort(attribute='name') -%}
        {%- set txt = exigo_text(c.name, c.type) -%}
        {%- do parts.append("case when " ~ c.name ~ " is null then '' else " ~ exigo_concat_text(["'" ~ c.name ~ ":'", exigo_text(exigo_length(txt)), "':'", txt, "';'"]) ~ " end") -%}
    {%- endfor -%}
    {{ exigo_hash(exigo_concat_text(parts)) }}
{%- endmacro %}

{#- Plan for one queue table (execution time only): checks B4, finds extra columns and values
    that cannot be cast (B3), and returns the select expressions. -#}
{% macro exigo_stage_plan(entity) -%}
    {%- set spec = exigo_entities()[entity] -%}
    {%- set table = spec['table'] -%}
    {%- do exigo_check_landed_batch(table) -%}
    {%- set node = exigo_source_node('exigo_queue', table) -%}
    {#- Introspect the real queue table named by the source node; select FROM source(), which a
        unit test replaces with its fixture. -#}
    {%- set rel = source('exigo_queue', table) -%}
    {%- set real_name = node.database ~ '.' ~ node.schema ~ '.' ~ node.identifier -%}
    {%- set existing = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.identifier) -%}
    {%- if existing is none -%}
        {{ exceptions.raise_compiler_error("exigo_sync: queue table " ~ real_name ~ " is missing (B4); nothing was merged") }}
    {%- endif -%}
    {%- set actual = {} -%}
    {%- set actual_order = [] -%}
    {%- for col in adapter.get_columns_in_relation(existing) -%}
        {%- do actual.update({col.name | lower: col}) -%}
        {%- do actual_order.append(col.name | lower) -%}
    {%- endfor -%}
    {%- set required = node.required -%}
    {%- set documented_lower = [] -%}
    {%- set columns = [] -%}
    {%- set to_check = [] -%}
    {%- for col in node.columns -%}
        {%- do documented_lower.append(col.name | lower) -%}
        {%- set wtype = exigo_type(col.data_type) -%}
        {%- set treatment = exigo_sensitive_policy(table, col.name) -%}
        {%- set present = actual.get(col.name | lower) -%}
        {%- if present is none and col.name in required -%}
            {{ exceptions.raise_compiler_error("exigo_sync: required column " ~ col.name ~ " is missing from queue table " ~ real_name ~ " (B4); nothing was merged") }}
        {%- endif -%}
        {%- if treatment != 'drop' -%}
            {%- set staged_type = exigo_policy_type(treatment, wtype) -%}
            {%- if present is none -%}
                {%- set expr = "cast(null as " ~ staged_type ~ ")" -%}
            {%- else -%}
                {%- set quoted = "q." ~ adapter.quote(present.name) -%}
                {%- if exigo_normalize_type(present.data_type) != exigo_normalize_type(wtype) -%}
                    {%- do to_check.append({'source': present.name, 'quoted': quoted, 'type': wtype, 'declared': col.data_type}) -%}
                {%- endif -%}
                {%- set expr = "cast(" ~ quoted ~ " as " ~ wtype ~ ")" -%}
                {%- if treatment == 'mask' -%}
                    {%- set expr = exigo_mask(exigo_text(expr, wtype)) -%}
                {%- elif treatment == 'hash' -%}
                    {%- set expr = "case when " ~ quoted ~ " is null then null else " ~ exigo_hash(exigo_text(expr, wtype)) ~ " end" -%}
                {%- endif -%}
            {%- endif -%}
            {%- do columns.append({'source': col.name, 'name': exigo_column_name(col.name), 'expr': expr, 'type': staged_type, 'documented': true}) -%}
        {%- endif -%}
    {%- endfor -%}
    {# Undocumented columns: carried through with their own type (policy still applies). #}
    {%- for lname in actual_order -%}
        {%- if lname not in documented_lower -%}
            {%- set present = actual[lname] -%}
            {%- set treatment = exigo_sensitive_policy(table, present.name) -%}
            {%- set quoted = "q." ~ adapter.quote(present.name) -%}
            {%- if treatment != 'drop' -%}
                {%- set expr = quoted -%}
                {%- if treatment == 'mask' -%}
                    {%- set expr = exigo_mask(exigo_text(quoted)) -%}
                {%- elif treatment == 'hash' -%}
                    {%- set expr = "case when " ~ quoted ~ " is null then null else " ~ exigo_hash(exigo_text(quoted)) ~ " end" -%}
                {%- endif -%}
                {%- do columns.append({'source': present.name, 'name': exigo_column_name(present.name), 'expr': expr, 'type': exigo_policy_type(treatment, present.data_type), 'documented': false}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {# B3: a column whose stored type differs from the documented one must still cast cleanly. #}
    {%- if to_check -%}
        {%- set probes = [] -%}
        {%- for c in to_check -%}
            {%- do probes.append("select '" ~ c.source ~ "' as column_name, min(" ~ exigo_text(c.quoted) ~ ") as bad_value from " ~ existing ~ " q where " ~ c.quoted ~ " is not null and " ~ exigo_cast_loses_value(c.quoted, c.type)) -%}
        {%- endfor -%}
        {%- set result = run_query("select column_name, bad_value from (" ~ probes | join(" union all ") ~ ") probe where bad_value is not null") -%}
        {%- if result.rows | length > 0 -%}
            {%- set row = result.rows[0] -%}
            {%- set declared = [] -%}
            {%- for c in to_check if c.source == row[0] -%}{%- do declared.append(c.declared) -%}{%- endfor -%}
            {{ exceptions.raise_compiler_error("exigo_sync: queue table " ~ real_name ~ ", column " ~ row[0] ~ ": value '" ~ row[1] ~ "' cannot be cast to " ~ declared[0] ~ " (B3); nothing was merged") }}
        {%- endif -%}
    {%- endif -%}
    {%- do exigo_end_read_transaction() -%}
    {{ return({'relation': rel, 'columns': columns, 'keys': spec['keys'], 'entity': entity, 'table': table, 'parent': spec.get('parent')}) }}
{%- endmacro %}

{#- The typed rows of a queue table with their version time and reject reason (shared by the
    staging model and the rejected-rows model). -#}
{#- relation / version_time / where: the same typing over another relation with the same columns
    (reopened keys read from dbo, exigo_reopened_rows_sql), dated at a given time. -#}
{% macro exigo_typed_rows_sql(plan, relation=none, version_time=none, where=none) -%}
    {%- set key_names = [] -%}
    {%- for k in plan['keys'] -%}{%- do key_names.append(exigo_snake_case(k)) -%}{%- endfor -%}
    {%- set pairs = [] -%}
    {%- for c in plan['columns'] -%}{%- do pairs.append([c.source, c.name]) -%}{%- endfor -%}
    {%- if plan['parent'] -%}
        {%- set parent_rel = source('exigo_queue', exigo_entities()[plan['parent']]['table']) -%}
    {%- endif -%}
    select
        typed.*,
        case
            {%- for k in key_names %}
            when typed.{{ k }} is null then 'null key column {{ plan['keys'][loop.index0] }}'
            {%- endfor %}
            {%- if plan['parent'] %}
            when typed.version_time is null then 'parent order not in batch'
            {%- else %}
            when typed.version_time is null then 'null ModifiedDate'
            {%- endif %}
        end as reject_reason,
        {{ exigo_row_to_json(pairs) }} as raw_row
    from (
        select
            {%- for c in plan['columns'] %}
            {{ c.expr }} as {{ c.name }},
            {%- endfor %}
            {%- if version_time is not none %}
            {{ version_time }} as version_time
            {%- elif plan['parent'] %}
            parent_order.version_time as version_time
            {%- else %}
            q.{{ adapter.quote('ModifiedDate') }} as version_time
            {%- endif %}
        from {{ relation if relation is not none else plan['relation'] }} as q
        {% if plan['parent'] and version_time is none -%}
        {# An order line's version time is its parent order's ModifiedDate in the same batch
            (the latest, should the order appear twice). #}
        left join (
            select {{ adapter.quote('OrderID') }} as order_id, max({{ adapter.quote('ModifiedDate') }}) as version_time
            from {{ parent_rel }}
            group by {{ adapter.quote('OrderID') }}
        ) parent_order
            on parent_order.order_id = q.{{ adapter.quote('OrderID') }}
        {%- endif %}
        {%- if where is not none %}
        where {{ where }}
        {%- endif %}
    ) typed
{%- endmacro %}

{#- Reopened keys (H7, swept entities): a key whose current history version is a deletion but which
    is at the source again (a restore, a sync re-initialisation: its ModifiedDate is old, so the
    queue never shows it) is staged with its source row, dated at this batch's refresh, and gets a
    new live version. '' when the entity is not swept or nothing can be read. -#}
{% macro exigo_reopened_rows_sql(plan) -%}
    {%- set entity = plan['entity'] -%}
    {%- set history = exigo_history_relation(entity) -%}
    {%- set reopen = exigo_reopen_relation(entity) if entity in exigo_swept_entities() else none -%}
    {%- if history is none or reopen is none -%}{{ return('') }}{%- endif -%}
    {%- set queue_join = [] -%}
    {%- for k in plan['keys'] -%}{%- do queue_join.append('batch_row.' ~ adapter.quote(k) ~ ' = q.' ~ adapter.quote(k)) -%}{%- endfor -%}
    {%- set where -%}
        exists (
            select 1 from {{ history }} h
            where h.is_current = {{ exigo_true() }} and h.is_deleted = {{ exigo_true() }}
              and {{ exigo_source_key_join(entity, 'q', 'h') }}
        )
        and not exists (select 1 from {{ plan['relation'] }} batch_row where {{ queue_join | join(' and ') }})
    {%- endset -%}
    {{ return(exigo_typed_rows_sql(plan, relation=reopen, version_time=exigo_timestamp_literal(exigo_batch_refreshed_at()), where=where)) }}
{%- endmacro %}

{#- source() calls made at parse time too, so dbt records the lineage (the real work only
    happens at execution time). -#}
{% macro exigo_register_sources(entity) -%}
    {%- set spec = exigo_entities()[entity] -%}
    {%- set rel = source('exigo_queue', spec['table']) -%}
    {%- set truth = source('exigo_dbo', spec['table']) -%}
    {%- if spec.get('parent') -%}
        {%- set parent_rel = source('exigo_queue', exigo_entities()[spec['parent']]['table']) -%}
    {%- endif -%}
{%- endmacro %}

{#- Staging model body: one row per key, latest version time wins (B2). -#}
{% macro exigo_stage_queue_table(entity) -%}
    {{ exigo_register_sources(entity) }}
    {%- if not execute -%}
        {# Parse time: no database; nothing below is rendered for real. #}
        {{ return('select 1 as parse_placeholder') }}
    {%- endif -%}
    {#- Both batch vars are checked here, in staging, so a bad invocation fails before any merge. -#}
    {%- set refreshed_at = exigo_batch_refreshed_at() -%}
    {%- set plan = exigo_stage_plan(entity) -%}
    {%- set key_names = [] -%}
    {%- for k in plan['keys'] -%}{%- do key_names.append(exigo_snake_case(k)) -%}{%- endfor -%}
    {%- set names = [] -%}
    {%- for c in plan['columns'] -%}{%- do names.append(c.name) -%}{%- endfor -%}
    {%- set hashed_columns = [] -%}
    {%- for c in plan['columns'] -%}{%- do hashed_columns.append({'name': c.name, 'type': c.type}) -%}{%- endfor -%}
    {%- set reopened = exigo_reopened_rows_sql(plan) -%}
with typed as (
    {{ exigo_typed_rows_sql(plan) }}
    {%- if reopened %}
    union all
    {{ reopened }}
    {%- endif %}
),

hashed as (
    select
        {%- for n in names %}
        {{ n }},
        {%- endfor %}
        version_time,
        {{ exigo_row_hash(hashed_columns) }} as row_hash
    from typed
    where reject_reason is null
),

ranked as (
    select
        hashed.*,
        count(*) over (partition by {{ key_names | join(', ') }}) as source_row_count,
        {# A tie: different contents at the winning version time. Broken by row_hash, flagged. #}
        case
            when min(row_hash) over (partition by {{ key_names | join(', ') }}, version_time)
                 <> max(row_hash) over (partition by {{ key_names | join(', ') }}, version_time)
            then 1 else 0
        end as tie_flag,
        row_number() over (
            partition by {{ key_names | join(', ') }}
            order by version_time desc, row_hash desc
        ) as version_rank
    from hashed
)

select
    {%- for n in names %}
    {{ n }},
    {%- endfor %}
    cast({{ exigo_batch_id() }} as {{ exigo_type('int') }}) as batch_id,
    version_time,
    row_hash,
    source_row_count,
    case when tie_flag = 1 then {{ exigo_true() }} else {{ exigo_false() }} end as is_tie_broken
from ranked
where version_rank = 1
{%- endmacro %}

{#- Rejected rows of one queue table for this batch (B1). raw_row holds the policy-applied row
    (S2: a dropped secret never reaches the rejected-rows table either). -#}
{% macro exigo_rejected_rows_sql(entity) -%}
    {%- set plan = exigo_stage_plan(entity) -%}
    select
        cast('{{ entity }}' as {{ exigo_type_string() }}) as entity,
        cast({{ exigo_batch_id() }} as {{ exigo_type('int') }}) as batch_id,
        cast(reject_reason as {{ exigo_type_string() }}) as reason,
        cast(raw_row as {{ exigo_type_string() }}) as raw_row,
        {{ dbt.current_timestamp() }} as rejected_at
    from (
        {{ exigo_typed_rows_sql(plan) }}
    ) rows_with_reason
    where reject_reason is not null
{%- endmacro %}
