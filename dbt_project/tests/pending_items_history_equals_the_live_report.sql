-- The pending-items history, at its latest moment, equals reports.pending_items (itself held
-- to the join over the marts): each product's latest row of
-- agg_pending_items_by_product_history, and the highest last_updated among its intervals of
-- fact_pending_item_intervals still pending. Returns one row per difference. Meaningful when
-- the history and the marts have applied the same range, as every build of them all leaves
-- them.

with

latest_totals as (
    select distinct on (product_id)
        product_id,
        quantity,
        pending_item_count
    from {{ ref('agg_pending_items_by_product_history') }}
    order by product_id asc, valid_from desc
),

latest_changes as (
    select
        product_id,
        max(last_updated) as last_updated
    from {{ ref('fact_pending_item_intervals') }}
    where pending_to is null
    group by product_id
),

from_history as (
    select
        latest_totals.product_id,
        latest_totals.quantity,
        date_trunc('second', latest_changes.last_updated) as last_updated
    from latest_totals
    left join latest_changes
        on latest_totals.product_id = latest_changes.product_id
    where latest_totals.pending_item_count > 0
),

live as (
    select
        product_id,
        quantity,
        last_updated
    from {{ ref('pending_items') }}
),

final as (
    select
        'missing from the history' as problem,
        missing_rows.product_id,
        missing_rows.quantity,
        missing_rows.last_updated
    from (
        select * from live
        except all
        select * from from_history
    ) as missing_rows

    union all

    select
        'not the live report' as problem,
        extra_rows.product_id,
        extra_rows.quantity,
        extra_rows.last_updated
    from (
        select * from from_history
        except all
        select * from live
    ) as extra_rows
)

select * from final
