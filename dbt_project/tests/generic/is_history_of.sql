{#-
    The history model's current versions are its mart's rows: the same keys with the same
    source columns. Both must have applied the same loads (one dbt invocation builds both);
    a row says so when they have not. And every version is well formed: its lineage columns
    set, current exactly while it has no end (then no ended_by), ended by an update, a delete
    or a truncate no earlier than it started, and at most one current version per key. One
    test per model for all of it: each dbt test costs every build a query and its overhead.
    Returns one row per disagreement.
-#}
{% test is_history_of(model, mart, key) %}

    with

    applied as materialized (
        select
            ({{ cdc_applied_load_id_sql(model) }}) as history_through,
            ({{ cdc_applied_load_id_sql(mart) }}) as mart_through
    ),

    current_versions as (
        select
            to_jsonb(versions)
            - array[
                'valid_from', 'valid_to', 'is_current', 'change_id', 'txid', 'ended_by',
                'ended_by_change_id', 'last_load_id'
            ] as row_image
        from {{ model }} as versions
        where versions.is_current
    ),

    mart_rows as (
        select
            to_jsonb(current_rows)
            - array[
                'last_change_id', 'last_changed_at', 'last_change_operation', 'last_load_id'
            ] as row_image
        from {{ mart }} as current_rows
    ),

    malformed_versions as (
        select
            'malformed version' as problem,
            to_jsonb(versions) as row_image
        from {{ model }} as versions
        where
            versions.{{ key }} is null
            or versions.valid_from is null
            or versions.change_id is null
            or versions.txid is null
            or versions.last_load_id is null
            or versions.is_current is null
            or versions.is_current != (versions.valid_to is null)
            or (versions.valid_to is null) != (versions.ended_by is null)
            or (versions.ended_by is null) != (versions.ended_by_change_id is null)
            or versions.ended_by not in ('UPDATE', 'DELETE', 'TRUNCATE')
            or versions.valid_to < versions.valid_from
            or versions.ended_by_change_id <= versions.change_id
    ),

    keys_current_twice as (
        select
            'more than one current version' as problem,
            jsonb_build_object('{{ key }}', versions.{{ key }}) as row_image
        from {{ model }} as versions
        where versions.is_current
        group by versions.{{ key }}
        having count(*) > 1
    ),

    final as (
        select * from malformed_versions

        union all

        select * from keys_current_twice

        union all

        select
            'the history and the mart applied other loads' as problem,
            null::jsonb as row_image
        from applied
        where applied.history_through != applied.mart_through

        union all

        select
            'current in the history, not in the mart' as problem,
            extra_rows.row_image
        from (
            select row_image from current_versions
            except all
            select row_image from mart_rows
        ) as extra_rows

        union all

        select
            'in the mart, not current in the history' as problem,
            missing_rows.row_image
        from (
            select row_image from mart_rows
            except all
            select row_image from current_versions
        ) as missing_rows
    )

    select * from final

{% endtest %}
