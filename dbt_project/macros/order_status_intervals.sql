{#-
    Each order's status intervals from its versions in orders_history (fact_orders_history):
    fact_order_status_changes, and inlined by the lifecycle reports (a view on that view
    would be dropped with it each time dbt replaces it; see macros/reports.sql). Consecutive
    versions with the same status (a delivery date moved, say) are one interval; an interval
    ends at the first version with another status, or where the order's versions end (a
    delete, a truncate) or break off (deleted, then inserted again later). A version valid at
    no moment (changed again in the same transaction) is skipped: the order never stood in it.
-#}
{% macro order_status_intervals(orders_history) %}
    with

    versions as (
        select
            order_id,
            status,
            valid_from,
            valid_to,
            ended_by,
            change_id
        from {{ orders_history }}
        where valid_to is null or valid_to > valid_from
    ),

    with_previous as (
        select
            *,
            lag(status) over (partition by order_id order by change_id) as previous_status,
            lag(valid_to) over (partition by order_id order by change_id) as previous_valid_to
        from versions
    ),

    marked as (
        select
            *,
            (
                (previous_status is distinct from status)
                or (previous_valid_to is distinct from valid_from)
            )::int as starts_interval
        from with_previous
    ),

    numbered as (
        select
            *,
            sum(starts_interval) over (
                partition by order_id order by change_id
            ) as interval_number
        from marked
    ),

    intervals as (
        select
            order_id,
            interval_number,
            min(status) as status,
            min(valid_from) as entered_at,
            (array_agg(valid_to order by change_id desc))[1] as left_at,
            (array_agg(ended_by order by change_id desc))[1] as left_by
        from numbered
        group by order_id, interval_number
    ),

    final as (
        select
            order_id,
            status,
            entered_at,
            left_at,
            left_at - entered_at as duration,
            left_by
        from intervals
    )

    select * from final
{% endmacro %}
