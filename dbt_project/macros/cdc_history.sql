{#-
    Every version of every key of one captured table, from its staged changes (docs/
    architecture.md, "History"): the history models' one source of their logic, as
    cdc_current_state() is the marts'.

    staged_relation, key_column, columns: as for cdc_current_state().

    Rules:
      * a version starts at an INSERT, UPDATE or SNAPSHOT of the key, and ends at the key's
        next change by change_id (valid_to is that change's time, ended_by its operation), or
        at the first TRUNCATE after it if that comes first; a DELETE ends a version and starts
        none;
      * a version's time is its transaction's commit time (committed_at), or the statement's
        time (changed_at) where the source did not track commit times;
      * versions start at the resync floor: below it the staged changes keep no row image.
    Out of order is the normal case: a key's older change can land in a later load than a newer
    change of another key, and a truncate can land after a change that came after it. So an
    incremental build re-evaluates each affected key from all its staged changes: the keys with
    changes in the new loads, and, when a truncate landed, the keys with a version that
    started before it and had not ended before it. The incremental strategy (history_apply)
    replaces all versions of each emitted key; a key left with none is emitted once with a
    null change_id, so its old versions are deleted and nothing is inserted. A resync that
    moved the floor past versions this model holds makes it re-evaluate every key.
-#}
{% macro cdc_history(staged_relation, key_column, columns) %}
    {% do cdc_wait_for_model_at_compile() %}
    {% set through_load_id = cdc_build_through_load_id() | trim %}
    {% set state_through = cdc_state_through_sql(through_load_id) %}
    {% set floor_sql = history_floor_sql() %}
    {% set reevaluate_all = not is_incremental() %}
{% if is_incremental() %}
        {% set applied_load_id = cdc_applied_load_id() | trim %}
        {% set new_truncate_id = cdc_new_truncate_id(
            staged_relation, applied_load_id, through_load_id
        ) | int %}
        {% set reevaluate_all = history_predates_floor(this, floor_sql) | trim == 'true' %}
{% endif %}
    with

    {% if reevaluate_all %}

        key_changes as (
            select *
            from {{ staged_relation }}
            where {{ key_column }} is not null and load_id <= {{ state_through }}
        ),

    {% else %}

        new_keys as (
            select {{ key_column }}
            from {{ staged_relation }}
            where
                load_id > {{ applied_load_id }} and load_id <= {{ through_load_id }}
                and {{ key_column }} is not null
        ),

        -- versions a newly landed truncate may end: started before it, not ended before it
        truncated_keys as (
            select versions.{{ key_column }}
            from {{ this }} as versions
            where
                versions.change_id < {{ new_truncate_id }}
                and (
                    versions.ended_by_change_id is null
                    or versions.ended_by_change_id > {{ new_truncate_id }}
                )
        ),

        affected_keys as (
            select {{ key_column }} from new_keys
            union
            select {{ key_column }} from truncated_keys
        ),

        -- One lookup per affected key in the hash index on primary_key, as in
        -- cdc_current_state(), whose "offset 0" this repeats for the same reason.
        key_changes as (
            select staged_changes.*
            from affected_keys
            cross join lateral (
                select *
                from {{ staged_relation }} as key_history
                where
                    key_history.primary_key
                    = jsonb_build_object('{{ key_column }}', affected_keys.{{ key_column }})
                    and key_history.load_id <= {{ state_through }}
                offset 0
            ) as staged_changes
        ),

    {% endif %}

    -- Materialized: a handful of rows, each version looks up the first one after it.
    truncates as materialized (
        select
            change_id,
            coalesce(committed_at, changed_at) as truncated_at
        from {{ staged_relation }}
        where change_operation = 'TRUNCATE' and load_id <= {{ state_through }}
    ),

    sequenced_changes as (
        select
            *,
            coalesce(committed_at, changed_at) as change_time,
            lead(change_id) over key_order as next_change_id,
            lead(change_operation) over key_order as next_operation,
            lead(coalesce(committed_at, changed_at)) over key_order as next_change_time,
            max(load_id) over (partition by {{ key_column }}) as key_last_load_id
        from key_changes
        window key_order as (partition by {{ key_column }} order by change_id)
    ),

    versions as (
        select
            sequenced_changes.*,
            next_truncate.change_id as truncate_id,
            next_truncate.truncated_at
        from sequenced_changes
        left join lateral (
            select
                truncates.change_id,
                truncates.truncated_at
            from truncates
            where truncates.change_id > sequenced_changes.change_id
            order by truncates.change_id
            limit 1
        ) as next_truncate on true
        where
            sequenced_changes.change_operation in ('INSERT', 'UPDATE', 'SNAPSHOT')
            and sequenced_changes.change_id >= {{ floor_sql }}
    ),

    ended_versions as (
        select
            *,
            truncate_id is not null
            and (next_change_id is null or truncate_id < next_change_id) as truncated
        from versions
    ),

    history as (
        select
            {{ key_column }},
            {% for column in columns %}
                ended_versions.{{ column }},
            {% endfor %}
            ended_versions.change_time as valid_from,
            case when truncated then truncated_at else next_change_time end as valid_to,
            not truncated and next_change_id is null as is_current,
            change_id,
            txid,
            case when truncated then 'TRUNCATE' else next_operation end as ended_by,
            case when truncated then truncate_id else next_change_id end as ended_by_change_id,
            key_last_load_id as last_load_id
        from ended_versions
    ),

    final as (
        select * from history
        {% if is_incremental() %}

            union all

            -- a key this model holds that has no version now: its old versions go, and
            -- nothing is added (a null change_id is not inserted); the join to no row gives
            -- nulls of the history's own column types
            select
                held_keys.{{ key_column }},
                {% for column in columns %}
                    no_version.{{ column }},
                {% endfor %}
                no_version.valid_from,
                no_version.valid_to,
                no_version.is_current,
                no_version.change_id,
                no_version.txid,
                no_version.ended_by,
                no_version.ended_by_change_id,
                no_version.last_load_id
            from (
                {% if reevaluate_all %}
                    select distinct {{ key_column }} from {{ this }}
                {% else %}
                    select {{ key_column }} from affected_keys
                {% endif %}
            ) as held_keys
            left join history as no_version on false
            where not exists (
                select
                from history
                where history.{{ key_column }} = held_keys.{{ key_column }}
            )
        {% endif %}
    )

    select * from final
{% endmacro %}

{#- The change_id the staged row images start at (the resync floor), as a scalar subquery. -#}
{% macro history_floor_sql() -%}
    (select {{ source('cdc', 'load_state').schema }}.decoded_change_id_floor())
{%- endmacro %}

{#-
    Whether the history model holds a version below the resync floor, as the text true or
    false (false when not executing): a resync has moved the floor past it, and a full build
    would not hold it.
-#}
{% macro history_predates_floor(model_relation, floor_sql) -%}
    {%- if execute -%}
        {#- min(), which reads one end of the change_id index: "exists (... where change_id <
            (floor))" could not know the floor when planned and scanned the whole table (0.65 s
            at 5M versions). -#}
        {{ run_query(
            "select coalesce((select min(change_id) from " ~ model_relation
            ~ ") < " ~ floor_sql ~ ", false)::text"
        ).columns[0].values()[0] }}
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}
