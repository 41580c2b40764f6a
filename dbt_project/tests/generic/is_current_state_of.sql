{#-
    Reconciliation: the model holds exactly the current state of the staged changes of one
    table (capture invariant 4), worked out here independently of cdc_current_state(): per
    key the staged change with the highest change_id, unless it is a DELETE or comes before
    the latest TRUNCATE. Every column the staged model and the model share must agree, and
    the lineage columns must name the winning change and the newest load of the key.
    Returns one row per disagreement: a key missing from the model, or a row that should not
    be there (or is there with other values). The staged changes are read through the newest
    load the model has applied (cdc_build_range.sql), so loads that landed after its build,
    which the next build applies, are no disagreement.
-#}
{% test is_current_state_of(model, staged_model, key) %}

    with

    applied as materialized (
        {{ cdc_applied_load_id_sql(model) }} as through_load_id
    ),

    staged_changes as (
        select *
        from {{ staged_model }}
        where load_id <= (select applied.through_load_id from applied)
    ),

    latest_truncate as (
        select coalesce(max(change_id), 0) as change_id
        from staged_changes
        where change_operation = 'TRUNCATE'
    ),

    -- One pass over the staged changes: a join of two aggregates of the decoding view gets
    -- a nested-loop plan that is quadratic in the number of keys.
    ranked_changes as (
        select
            *,
            row_number() over (
                partition by {{ key }} order by change_id desc
            ) as change_rank,
            max(load_id) over (partition by {{ key }}) as key_last_load_id
        from staged_changes
        where {{ key }} is not null
    ),

    expected as (
        select
            ranked_changes.{{ key }} as key_value,
            ranked_changes.change_id as last_change_id,
            ranked_changes.changed_at as last_changed_at,
            ranked_changes.change_operation as last_change_operation,
            ranked_changes.key_last_load_id as last_load_id,
            to_jsonb(ranked_changes)
            - array[
                'change_id', 'txid', 'load_id', 'change_operation', 'changed_at',
                'committed_at', 'primary_key', 'change_rank', 'key_last_load_id'
            ] as row_image
        from ranked_changes
        where
            ranked_changes.change_rank = 1
            -- a scalar subquery runs once; joined, it would run again for every row
            and ranked_changes.change_id > (select latest_truncate.change_id from latest_truncate)
            and ranked_changes.change_operation != 'DELETE'
    ),

    actual as (
        select
            model_rows.{{ key }} as key_value,
            model_rows.last_change_id,
            model_rows.last_changed_at,
            model_rows.last_change_operation,
            model_rows.last_load_id,
            to_jsonb(model_rows)
            - array[
                'last_change_id', 'last_changed_at', 'last_change_operation', 'last_load_id'
            ] as row_image
        from {{ model }} as model_rows
    ),

    missing_from_model as (
        select
            'missing from the model' as problem,
            *
        from (
            select * from expected
            except all
            select * from actual
        ) as missing_rows
    ),

    not_in_staged_state as (
        select
            'not the staged current state' as problem,
            *
        from (
            select * from actual
            except all
            select * from expected
        ) as extra_rows
    ),

    final as (
        select * from missing_from_model
        union all
        select * from not_in_staged_state
    )

    select * from final

{% endtest %}
