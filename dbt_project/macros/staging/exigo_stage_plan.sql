{#- The documented source table (macro exigo_catalog, generated from the same catalogue as the
    sources YAML; unit tests render without the dbt graph, so the graph cannot be the source).
    Returns {database, schema, identifier, keys, required, columns: [{name, data_type}]}. -#}
{% macro exigo_source_node(source_name, table) -%}
    {%- set entry = exigo_catalog().get(table) -%}
    {%- if entry is none -%}
        {{ exceptions.raise_compiler_error("exigo_sync: source table " ~ table ~ " is not documented") }}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for c in entry['columns'] -%}{%- do columns.append({'name': c[0], 'data_type': c[1]}) -%}{%- endfor -%}
    {%- set location = exigo_source_location(source_name) -%}
    {{ return({'database': location.database, 'schema': location.schema,
               'identifier': table, 'keys': entry['keys'], 'required': entry['required'], 'columns': columns}) }}
{%- endmacro %}

{#- Documented columns that survive the S2 policy, as staged: [{source, name, type}]. Needs no
    database, so history models (and unit tests) can rely on it. -#}
{% macro exigo_documented_columns(entity) -%}
    {%- set table = exigo_entities()[entity]['table'] -%}
    {%- set node = exigo_source_node(exigo_entity_source(entity), table) -%}
    {%- set policy = exigo_table_policy(table) -%}
    {%- set reserved = exigo_reserved_column_names() -%}
    {%- set warehouse_types = exigo_warehouse_types(node.columns) -%}
    {#- Masked and hashed values are text, whatever the source type. -#}
    {%- set text_type = exigo_type_string() -%}
    {%- set out = [] -%}
    {%- for col in node.columns -%}
        {%- set treatment = policy.get(col.name | lower, 'keep') -%}
        {%- if treatment != 'drop' -%}
            {%- do out.append({'source': col.name, 'name': exigo_column_name(col.name, reserved), 'type': text_type if treatment in ('mask', 'hash') else warehouse_types[col.data_type]}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- {declared type: warehouse type} for a table's columns: one exigo_type call per distinct type
    (a table has a handful), not one per column. -#}
{% macro exigo_warehouse_types(columns) -%}
    {%- set types = {} -%}
    {%- for col in columns -%}
        {%- if col.data_type not in types -%}{%- do types.update({col.data_type: exigo_type(col.data_type)}) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(types) }}
{%- endmacro %}

{#- Plan for one entity's source table (execution time only): the queue table of a replicated
    entity, the dbo table of a lookup. Checks B4, finds extra columns and values that cannot be
    cast (B3), and returns the select expressions. Source names reach SQL only quoted
    (exigo_quote, exigo_string_literal). A value is named in a B3 message only when its column's
    treatment is `keep`: the probe does not even read the value of a masked or hashed one (S2). -#}
{% macro exigo_stage_plan(entity) -%}
    {%- set spec = exigo_entities()[entity] -%}
    {%- set table = spec['table'] -%}
    {%- set source_name = exigo_entity_source(entity) -%}
    {%- set label = exigo_entity_table_label(entity) -%}
    {%- do exigo_check_landed_batch(source_name, table) -%}
    {%- set node = exigo_source_node(source_name, table) -%}
    {#- Introspect the real source table named by the source node; select FROM source(), which a
        unit test replaces with its fixture. -#}
    {%- set rel = source(source_name, table) -%}
    {#- Messages name the source's own table (what the operator knows), not its pinned copy. -#}
    {%- set real_name = ('queue.' if source_name == 'exigo_queue' else 'dbo.') ~ table -%}
    {%- set existing = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.identifier) -%}
    {%- if existing is none -%}
        {{ exceptions.raise_compiler_error("exigo_sync: " ~ label ~ " " ~ real_name ~ " is missing (B4); nothing was merged") }}
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
    {%- set hashed = [] -%}
    {%- set policy = exigo_table_policy(table) -%}
    {%- set reserved = exigo_reserved_column_names() -%}
    {%- set warehouse_types = exigo_warehouse_types(node.columns) -%}
    {%- set stored_types = exigo_stored_types(actual.values()) -%}
    {%- set text_type = exigo_type_string() -%}
    {%- set normalized = {} -%}
    {%- for wtype in warehouse_types.values() -%}{%- do normalized.update({wtype: exigo_normalize_type(wtype)}) -%}{%- endfor -%}
    {%- for col in node.columns -%}
        {%- do documented_lower.append(col.name | lower) -%}
        {%- set wtype = warehouse_types[col.data_type] -%}
        {%- set treatment = policy.get(col.name | lower, 'keep') -%}
        {%- set present = actual.get(col.name | lower) -%}
        {%- if present is none and col.name in required -%}
            {{ exceptions.raise_compiler_error("exigo_sync: required column " ~ col.name ~ " is missing from " ~ label ~ " " ~ real_name ~ " (B4); nothing was merged") }}
        {%- endif -%}
        {%- if treatment != 'drop' -%}
            {%- set staged_type = text_type if treatment in ('mask', 'hash') else wtype -%}
            {%- if present is none -%}
                {%- set expr = "cast(null as " ~ staged_type ~ ")" -%}
            {%- else -%}
                {%- set quoted = "q." ~ exigo_quote(present.name) -%}
                {%- if stored_types[col.name | lower] != normalized[wtype] -%}
                    {%- do to_check.append({'source': present.name, 'quoted': quoted, 'type': wtype, 'declared': col.data_type, 'treatment': treatment}) -%}
                {%- endif -%}
                {%- set expr = "cast(" ~ quoted ~ " as " ~ wtype ~ ")" -%}
                {%- if treatment == 'mask' -%}
                    {%- set expr = exigo_mask(exigo_text(expr, wtype)) -%}
                {%- elif treatment == 'hash' -%}
                    {%- set expr = "case when " ~ quoted ~ " is null then null else " ~ exigo_keyed_hash(exigo_text(expr, wtype)) ~ " end" -%}
                    {%- do hashed.append(table ~ '.' ~ col.name) -%}
                {%- endif -%}
            {%- endif -%}
            {%- do columns.append({'source': col.name, 'name': exigo_column_name(col.name, reserved), 'expr': expr, 'type': staged_type, 'documented': true}) -%}
        {%- endif -%}
    {%- endfor -%}
    {# Undocumented columns: carried through with their own type (policy still applies). Their
       warehouse name (exigo_column_name: letters, digits, `_`) must be a plain, unused name. #}
    {%- set used_names = [] -%}
    {%- for c in columns -%}{%- do used_names.append(c.name) -%}{%- endfor -%}
    {%- for lname in actual_order -%}
        {%- if lname not in documented_lower -%}
            {%- set present = actual[lname] -%}
            {%- set treatment = policy.get(present.name | lower, 'keep') -%}
            {%- set quoted = "q." ~ exigo_quote(present.name) -%}
            {%- set name = exigo_column_name(present.name, reserved) -%}
            {%- if treatment != 'drop' and (not modules.re.match('^[a-z_][a-z0-9_]*$', name) or name in used_names) -%}
                {{ exceptions.raise_compiler_error("exigo_sync: " ~ label ~ " " ~ real_name ~ " has a new column '" ~ present.name ~ "' whose warehouse name " ~ ("'" ~ name ~ "'" if name else "(empty)") ~ " " ~ ("is taken by another column" if name in used_names else "is not a plain name") ~ " (B3): rename it at the source, or name it `drop` in exigo_sensitive_columns; nothing was merged") }}
            {%- endif -%}
            {%- do used_names.append(name) -%}
            {%- if treatment != 'drop' -%}
                {%- set expr = quoted -%}
                {%- if treatment == 'mask' -%}
                    {%- set expr = exigo_mask(exigo_text(quoted)) -%}
                {%- elif treatment == 'hash' -%}
                    {%- set expr = "case when " ~ quoted ~ " is null then null else " ~ exigo_keyed_hash(exigo_text(quoted)) ~ " end" -%}
                    {%- do hashed.append(table ~ '.' ~ present.name) -%}
                {%- endif -%}
                {%- do columns.append({'source': present.name, 'name': name, 'expr': expr, 'type': text_type if treatment in ('mask', 'hash') else present.data_type, 'documented': false}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {# B3: a column whose stored type differs from the documented one must still cast cleanly. #}
    {%- if to_check -%}
        {%- set probes = [] -%}
        {%- for c in to_check -%}
            {#- S2: a value leaves the database only from a column kept as is. -#}
            {%- set value = ("min(" ~ exigo_text(c.quoted) ~ ")") if c.treatment == 'keep' else ("cast(null as " ~ exigo_type_string() ~ ")") -%}
            {%- do probes.append("select " ~ loop.index0 ~ " as probe_index, count(*) as bad_rows, " ~ value ~ " as bad_value from " ~ existing ~ " q where " ~ c.quoted ~ " is not null and " ~ exigo_cast_loses_value(c.quoted, c.type)) -%}
        {%- endfor -%}
        {%- set result = run_query("select probe_index, bad_value from (" ~ probes | join(" union all ") ~ ") probe where bad_rows > 0 order by probe_index") -%}
        {%- if result.rows | length > 0 -%}
            {%- set row = result.rows[0] -%}
            {%- set c = to_check[row[0] | int] -%}
            {%- if c.treatment == 'keep' -%}
                {{ exceptions.raise_compiler_error("exigo_sync: " ~ label ~ " " ~ real_name ~ ", column " ~ c.source ~ ": value '" ~ row[1] ~ "' cannot be cast to " ~ c.declared ~ " (B3); nothing was merged") }}
            {%- endif -%}
            {{ exceptions.raise_compiler_error("exigo_sync: " ~ label ~ " " ~ real_name ~ ", column " ~ c.source ~ ": a value cannot be cast to " ~ c.declared ~ " (B3); the value is withheld because the column is " ~ {'mask': 'masked', 'hash': 'hashed'}[c.treatment] ~ " (S2); nothing was merged") }}
        {%- endif -%}
    {%- endif -%}
    {%- if hashed -%}{%- do exigo_require_hash_key(hashed) -%}{%- endif -%}
    {%- do exigo_end_read_transaction() -%}
    {{ return({'relation': rel, 'columns': columns, 'keys': spec['keys'], 'entity': entity, 'table': table, 'kind': spec['kind'], 'parent': spec.get('parent')}) }}
{%- endmacro %}
