{#-
    dbt-postgres' index DDL, plus an optional `where` (a partial index): an index entry in
    the model's config may carry {'where': '<predicate>'}. fact_pending_order_items indexes
    its current versions only, so retiring a version adds no entry to them.
-#}
{% macro postgres__get_create_index_sql(relation, index_dict) -%}
    {%- set where = index_dict.get('where') -%}
    {%- set dbt_index_dict = {} -%}
    {%- for key, value in index_dict.items() if key != 'where' -%}
        {%- do dbt_index_dict.update({key: value}) -%}
    {%- endfor -%}
    {%- set index_config = adapter.parse_index(dbt_index_dict) -%}
    {%- set index_name = index_config.render(relation) -%}
    create {% if index_config.unique -%} unique {%- endif %} index if not exists
    "{{ index_name }}"
    on {{ relation }} {% if index_config.type -%} using {{ index_config.type }} {%- endif %}
    ({{ ", ".join(index_config.columns) }})
    {%- if where %} where {{ where }}{% endif %}
{%- endmacro %}
