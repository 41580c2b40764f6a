-- reports.pending_items as it stood at the moment set in acme.as_of, for
-- `acme pending_items --as-of`: the same answer as pending_items_report() over the marts as
-- they stood then (orders_as_of(), order_items_as_of()), read per product instead of joining
-- every item version with its order's versions (millions at 1M orders). The quantity is the
-- product's row of agg_pending_items_by_product_history in force then; the latest change
-- time is the highest last_updated among the product's intervals of
-- fact_pending_item_intervals pending then. An interval's last_updated is at most its start,
-- hence at most the moment, unless marked updated_after_start: the lookup reads the others
-- down from the moment in the (product_id, last_updated) index, and the marked ones apart.

with recursive

-- Every product the totals have a row for, one index probe each (a loose index scan).
products (product_id) as (
    (
        select product_totals.product_id
        from {{ ref('agg_pending_items_by_product_history') }} as product_totals
        order by product_totals.product_id
        limit 1
    )

    union all

    select (
        select product_totals.product_id
        from {{ ref('agg_pending_items_by_product_history') }} as product_totals
        where product_totals.product_id > products.product_id
        order by product_totals.product_id
        limit 1
    )
    from products
    where products.product_id is not null
),

totals_then as (
    select
        products.product_id,
        totals.quantity
    from products
    cross join
        lateral (
            select
                product_totals.quantity,
                product_totals.pending_item_count
            from {{ ref('agg_pending_items_by_product_history') }} as product_totals
            where
                product_totals.product_id = products.product_id
                and product_totals.valid_from <= {{ as_of_moment() }}
            order by product_totals.valid_from desc
            limit 1
        ) as totals
    where totals.pending_item_count > 0
),

final as (
    select
        totals_then.product_id,
        totals_then.quantity,
        date_trunc('second', greatest(
            (
                select intervals.last_updated
                from {{ ref('fact_pending_item_intervals') }} as intervals
                where
                    intervals.product_id = totals_then.product_id
                    and not intervals.updated_after_start
                    and intervals.last_updated <= ({{ as_of_moment() }} at time zone 'UTC')
                    and intervals.pending_from <= {{ as_of_moment() }}
                    and (
                        intervals.pending_to is null
                        or intervals.pending_to > {{ as_of_moment() }}
                    )
                order by intervals.last_updated desc
                limit 1
            ),
            (
                select max(intervals.last_updated)
                from {{ ref('fact_pending_item_intervals') }} as intervals
                where
                    intervals.product_id = totals_then.product_id
                    and intervals.updated_after_start
                    and intervals.pending_from <= {{ as_of_moment() }}
                    and (
                        intervals.pending_to is null
                        or intervals.pending_to > {{ as_of_moment() }}
                    )
            )
        )) as last_updated
    from totals_then
)

select * from final
