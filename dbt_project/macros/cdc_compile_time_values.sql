{#-
    Values cdc_current_state() reads from the database while a model compiles, so they reach
    the planner as literals.
-#}

{#-
    The newest load already applied to the model being built, as a literal: the planner can
    then estimate how few staged rows lie beyond it (a subquery would get a blind guess).
-#}
{% macro cdc_applied_load_id() -%}
    {%- if execute -%}
        {{ run_query(cdc_applied_load_id_sql(this)).columns[0].values()[0] }}
    {%- else -%}
        0
    {%- endif -%}
{%- endmacro %}

{#-
    The change_id of the newest TRUNCATE among the changes landed after applied_load_id (the
    model's cdc_applied_load_id()) through through_load_id (this build's range), or 0 (also
    when not executing).
-#}
{% macro cdc_new_truncate_id(staged_relation, applied_load_id, through_load_id) -%}
    {%- if execute -%}
        {{ run_query(
            "select coalesce(max(change_id), 0) from " ~ staged_relation
            ~ " where change_operation = 'TRUNCATE' and load_id > " ~ applied_load_id
            ~ " and load_id <= " ~ through_load_id
        ).columns[0].values()[0] }}
    {%- else -%}
        0
    {%- endif -%}
{%- endmacro %}
