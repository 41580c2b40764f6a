{#-
    The replace_from incremental strategy (config: incremental_strategy='replace_from'), for
    a model whose rows are dated by valid_from and whose incremental run recomputes every row
    from one moment on (agg_pending_items_by_product_history). The run emits those rows and
    one marker row at that moment with a null key, so the moment is known even where no row
    starts there ('-infinity' to replace everything). Applying it: delete every target row
    from that moment on, then insert the emitted rows but the marker. Both statements run in
    the model's transaction, so readers see the old rows or the new ones.

    arg_dict is dbt's: target_relation, temp_relation, unique_key (the key column, null in
    the marker), dest_columns (the target's columns).
-#}
{% macro get_incremental_replace_from_sql(arg_dict) %}
{% set dest_columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) %}
{% set key_column = adapter.quote(version_apply_key(arg_dict['unique_key'])) %}

    delete from {{ arg_dict['target_relation'] }}
    where valid_from >= (
        select min(emitted_rows.valid_from)
        from {{ arg_dict['temp_relation'] }} as emitted_rows
        where emitted_rows.{{ key_column }} is null
    );

    insert into {{ arg_dict['target_relation'] }} ({{ dest_columns_csv }})
    select {{ dest_columns_csv }}
    from {{ arg_dict['temp_relation'] }}
    where {{ key_column }} is not null
{% endmacro %}
