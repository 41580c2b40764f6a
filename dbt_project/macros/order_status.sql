{#-
    The report definitions, in one place. The status lists are dbt vars in dbt_project.yml
    (closed_order_statuses, pending_order_status); every report filters through these two
    macros, so changing a definition is a change of a var.
-#}

{#- True when the order is open: its status is not one of the closed statuses. -#}
{% macro is_open_order(status) -%}
    {{ status }} not in ({{ order_status_list(var('closed_order_statuses')) }})
{%- endmacro %}

{#- True when the order is pending: its status is the pending status. -#}
{% macro is_pending_order(status) -%}
    {{ status }} = '{{ var('pending_order_status') }}'
{%- endmacro %}

{#- A list of statuses as a comma-separated list of SQL string literals. -#}
{% macro order_status_list(statuses) -%}
    {%- for status in statuses -%}
        '{{ status }}'{% if not loop.last %}, {% endif %}
    {%- endfor -%}
{%- endmacro %}
