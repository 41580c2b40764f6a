{#-
    The version_apply incremental strategy (config: incremental_strategy='version_apply'),
    for a model that keeps versions of its rows instead of replacing them, so that a model
    derived from it can work out what changed since the range it last applied
    (fact_pending_order_items, read by agg_pending_items_by_product). Each row is one version
    of a key: added_load_id is the range that added it, removed_load_id the range that
    retired it (null while current). The model's incremental run emits two kinds of rows:
      * a current version to retire: its key, with removed_load_id set to the build's range;
      * a new current version: removed_load_id null.
    Applying it: retire the current version of each key emitted with a removed_load_id (one
    build retires with one range, so one value), then insert the new ones. Both statements
    run in the model's transaction, so readers see the old versions or the new ones.

    arg_dict is dbt's: target_relation, temp_relation, unique_key (the key column),
    dest_columns (the target's columns).
-#}
{% macro get_incremental_version_apply_sql(arg_dict) %}
{% set dest_columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) %}
{% set key_column = adapter.quote(version_apply_key(arg_dict['unique_key'])) %}

    -- Each key has one current version, so the key finds it: as an array, the keys are
    -- looked up in the key's index whatever the planner guesses of the unanalyzed temporary
    -- table (a join was planned as a scan of every version).
    update {{ arg_dict['target_relation'] }}
    set removed_load_id = (
        select max(retired_rows.removed_load_id)
        from {{ arg_dict['temp_relation'] }} as retired_rows
    )
    where
        {{ key_column }} = any(array(
            select retired_rows.{{ key_column }}
            from {{ arg_dict['temp_relation'] }} as retired_rows
            where retired_rows.removed_load_id is not null
        ))
        and removed_load_id is null;

    insert into {{ arg_dict['target_relation'] }} ({{ dest_columns_csv }})
    select {{ dest_columns_csv }}
    from {{ arg_dict['temp_relation'] }}
    where removed_load_id is null
{% endmacro %}

{#- The model's one key column; the strategy needs it. -#}
{% macro version_apply_key(unique_key) -%}
    {%- if unique_key is none or unique_key is not string or unique_key | trim == '' -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'version_apply' needs unique_key (the model's key column)"
        ) }}
    {%- endif -%}
    {{- return(unique_key) -}}
{%- endmacro %}

{#-
    True when the version (a row of a version_apply model, by its alias) was a current
    version once the range through_load_id had been applied: added by it or an earlier one,
    and not retired by then. through_load_id: a literal or a scalar subquery.
-#}
{% macro version_is_live(alias, through_load_id) -%}
    (
        {{ alias }}.added_load_id <= {{ through_load_id }}
        and (
            {{ alias }}.removed_load_id is null
            or {{ alias }}.removed_load_id > {{ through_load_id }}
        )
    )
{%- endmacro %}
