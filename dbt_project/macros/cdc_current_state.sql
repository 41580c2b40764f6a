{#-
    The current state of one captured table, from its staged changes (docs/architecture.md,
    "Last writer wins"), through this build's range of loads, or the newer range another
    invocation already applied to the model (cdc_build_range.sql). Used by every mart; the only place this logic lives.

    staged_relation: a staging model, one row per staged change of the table, with columns
        change_id, load_id, change_operation, changed_at, primary_key (jsonb), the key and the
        source columns (a TRUNCATE change has a null key).
    key_column: the table's key column.
    columns: the source columns to carry, besides the key.

    Rules:
      * per key, the change with the highest change_id across everything staged wins, not the
        change of the newest load (transactions commit, and so land, out of order);
      * a key whose winning change is a DELETE is absent;
      * a TRUNCATE removes every key whose winning change_id is lower than the truncate's.
    Each row carries its lineage: last_change_id, last_changed_at, last_change_operation
    (of the winning change) and last_load_id (the newest load holding a change of the key).

    Full build: only live rows. Incremental build: the keys affected by the loads newer than
    the newest one already applied (max(last_load_id) in the model) are re-evaluated against
    all their staged changes (found by primary_key, the key as the change log holds it), so a late older change never overwrites newer state; keys
    removed since are emitted too, with last_change_operation 'DELETE' or 'TRUNCATE', and the
    cdc_apply strategy deletes them (get_incremental_cdc_apply_sql).
-#}
{% macro cdc_current_state(staged_relation, key_column, columns) %}
{% do cdc_wait_for_model_at_compile() %}
{% set through_load_id = cdc_build_through_load_id() | trim %}
{% set state_through = cdc_state_through_sql(through_load_id) %}
{% if is_incremental() %}
{% set applied_load_id = cdc_applied_load_id() | trim %}
{% set new_truncate_id = cdc_new_truncate_id(
    staged_relation, applied_load_id, through_load_id
) | int %}
{% endif %}
    with

    {% if is_incremental() %}

        -- The newest applied load, this build's newest load and the newest truncate between
        -- them are literals, read when the model compiles, so the planner sizes the new
        -- changes from statistics, and the rows a truncate removes are only looked for when
        -- one has landed.
        new_changes as (
            select primary_key
            from {{ staged_relation }}
            where load_id > {{ applied_load_id }} and load_id <= {{ through_load_id }}
        ),

        affected_keys as (
            select primary_key
            from new_changes
            where primary_key is not null
            {% if new_truncate_id > 0 %}

                union

                -- rows a newly landed truncate removes: captured before it, not changed since
                select jsonb_build_object('{{ key_column }}', current_rows.{{ key_column }})
                from {{ this }} as current_rows
                where current_rows.last_change_id < {{ new_truncate_id }}
            {% endif %}
        ),

        -- One lookup per affected key in the hash index on primary_key. "offset 0" keeps the
        -- subquery from being flattened into a join, which the planner was seen to run as a
        -- hash join over the table's whole history even for a single new change.
        key_changes as (
            select staged_changes.*
            from affected_keys
            cross join lateral (
                select *
                from {{ staged_relation }} as key_history
                where
                    key_history.primary_key = affected_keys.primary_key
                    and key_history.load_id <= {{ state_through }}
                offset 0
            ) as staged_changes
        ),

    {% else %}

        key_changes as (
            select *
            from {{ staged_relation }}
            where {{ key_column }} is not null and load_id <= {{ state_through }}
        ),

    {% endif %}

    -- Materialized: one row, worked out once, whatever the planner guesses of the join.
    latest_truncate as materialized (
        select
            change_id,
            changed_at
        from {{ staged_relation }}
        where change_operation = 'TRUNCATE' and load_id <= {{ state_through }}
        order by change_id desc
        limit 1
    ),

    ranked_changes as (
        select
            *,
            row_number() over (
                partition by {{ key_column }} order by change_id desc
            ) as change_rank,
            max(load_id) over (partition by {{ key_column }}) as key_last_load_id
        from key_changes
    ),

    winning_changes as (
        select *
        from ranked_changes
        where change_rank = 1
    ),

    current_state as (
        select
            winning_changes.{{ key_column }},
            {% for column in columns %}
                winning_changes.{{ column }},
            {% endfor %}
            coalesce(latest_truncate.change_id, winning_changes.change_id) as last_change_id,
            coalesce(latest_truncate.changed_at, winning_changes.changed_at) as last_changed_at,
            case
                when latest_truncate.change_id is not null then 'TRUNCATE'
                else winning_changes.change_operation
            end as last_change_operation,
            winning_changes.key_last_load_id as last_load_id
        from winning_changes
        -- the latest truncate, where it came after the key's winning change
        left join latest_truncate
            on winning_changes.change_id < latest_truncate.change_id
    ),

    final as (
        select *
        from current_state
        {% if not is_incremental() %}
            where last_change_operation not in ('DELETE', 'TRUNCATE')
        {% endif %}
    )

    select * from final
{% endmacro %}
