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
