{#-
    The history_apply incremental strategy (config: incremental_strategy='history_apply'), for
    models built with cdc_history(). The model's incremental run emits every version of each
    affected key, and a key left with no version once, with a null change_id. Applying it:
    delete every version of each emitted key, then insert the emitted versions. Both
    statements run in the model's transaction, so readers see the old history or the new one.

    arg_dict is dbt's, as for get_incremental_cdc_apply_sql().
-#}
{% macro get_incremental_history_apply_sql(arg_dict) %}
    {{ cdc_replace_keys_sql(arg_dict, 'change_id is not null') }}
{% endmacro %}
