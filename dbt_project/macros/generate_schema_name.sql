{#-
    Custom schemas are used as they are named (staging, analytics, reports) instead of
    dbt's default <target schema>_<custom schema>. Nodes without one use the target's schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
