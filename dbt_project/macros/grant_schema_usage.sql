{#-
    on-run-end hook: grants usage on a schema to a role, when this run built something in
    that schema (schemas is dbt's list of the schemas the run built into). Select on each
    view is granted by the models' grants config; usage on the schema lets the role reach them.
-#}
{% macro grant_schema_usage(schemas, schema_name, role_name) -%}
    {%- if schema_name in schemas -%}
        grant usage on schema {{ adapter.quote(schema_name) }} to {{ adapter.quote(role_name) }}
    {%- endif -%}
{%- endmacro %}
