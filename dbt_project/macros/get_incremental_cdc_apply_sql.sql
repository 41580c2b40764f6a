{#-
    The cdc_apply incremental strategy (config: incremental_strategy='cdc_apply'), for models
    built with cdc_current_state(). The model's incremental run emits every affected key, the
    removed ones marked by last_change_operation 'DELETE' or 'TRUNCATE'. Applying it: delete
    every target row whose key is emitted, then insert the emitted rows that are live. Both
    statements run in the model's transaction, so readers see the old state or the new one.

    arg_dict is dbt's: target_relation, temp_relation, unique_key (the key column),
    dest_columns (the target's columns) and incremental_predicates (extra conditions on the
    delete, optional).
-#}
{% macro get_incremental_cdc_apply_sql(arg_dict) %}
    {{ cdc_replace_keys_sql(arg_dict, "last_change_operation not in ('DELETE', 'TRUNCATE')") }}
{% endmacro %}

{#-
    Both strategies' statements (cdc_apply, history_apply): delete every target row whose key
    is emitted, then insert the emitted rows for which inserted_rows (a condition on the
    temporary relation's columns) holds.
-#}
{% macro cdc_replace_keys_sql(arg_dict, inserted_rows) %}
    {% set dest_columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) %}

    delete from {{ arg_dict['target_relation'] }} as target_rows
    where {{ cdc_apply_delete_condition(arg_dict) }};

    insert into {{ arg_dict['target_relation'] }} ({{ dest_columns_csv }})
    select {{ dest_columns_csv }}
    from {{ arg_dict['temp_relation'] }}
    where {{ inserted_rows }}
{% endmacro %}

{#-
    The delete's condition: the target row's key is among the emitted rows' keys, and every
    incremental predicate (a condition on target_rows) holds. A semi-join, not a join with
    the emitted rows: where many rows share a key (history_apply) the join was planned as a
    hash join over the whole target (0.75 s at 2M intervals against 0.06 s for the same
    delete as a semi-join, which probes the key's index once per distinct key).
-#}
{% macro cdc_apply_delete_condition(arg_dict) %}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- if unique_key is none or unique_key is string and unique_key | trim == '' -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'cdc_apply' needs unique_key (the model's key column)"
        ) }}
    {%- endif -%}
    {%- set key_columns = [unique_key] if unique_key is string else unique_key -%}
    {%- set target_keys, changed_keys = [], [] -%}
    {%- for key_column in key_columns -%}
        {%- do target_keys.append('target_rows.' ~ adapter.quote(key_column)) -%}
        {%- do changed_keys.append('changed_rows.' ~ adapter.quote(key_column)) -%}
    {%- endfor -%}
    {%- set conditions = [
        '(' ~ target_keys | join(', ') ~ ') in (select ' ~ changed_keys | join(', ')
        ~ ' from ' ~ arg_dict['temp_relation'] ~ ' as changed_rows)'
    ] -%}
    {%- do conditions.extend(arg_dict['incremental_predicates'] or []) -%}
    {{- return(conditions | join(' and ')) -}}
{% endmacro %}
