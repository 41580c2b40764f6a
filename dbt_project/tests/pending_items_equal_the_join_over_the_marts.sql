-- reports.pending_items, maintained by adding and subtracting (fact_pending_order_items,
-- agg_pending_items_by_product), equals the plain answer: every item of a pending order in
-- the marts, joined and grouped by product, as the report was computed before it was
-- maintained. Returns one row per difference. Meaningful when the marts and the two
-- maintained models have applied the same range, as every build of them all leaves them.

with

orders as (
    select * from {{ ref('fact_orders') }}
),

order_items as (
    select * from {{ ref('fact_order_items') }}
),

pending_orders as (
    select *
    from orders
    where {{ is_pending_order('status') }}
),

pending_order_items as (
    select
        order_items.product_id,
        order_items.quantity,
        greatest(order_items.updated_at, pending_orders.updated_at) as updated_at
    from order_items
    inner join pending_orders
        on order_items.order_id = pending_orders.order_id
),

expected as (
    select
        product_id,
        sum(quantity) as quantity,
        date_trunc('second', max(updated_at)) as last_updated
    from pending_order_items
    group by product_id
),

actual as (
    select
        product_id,
        quantity,
        last_updated
    from {{ ref('pending_items') }}
),

missing_from_report as (
    select
        'missing from the report' as problem,
        missing_rows.product_id,
        missing_rows.quantity,
        missing_rows.last_updated
    from (
        select * from expected
        except all
        select * from actual
    ) as missing_rows
),

not_in_join as (
    select
        'not the join over the marts' as problem,
        extra_rows.product_id,
        extra_rows.quantity,
        extra_rows.last_updated
    from (
        select * from actual
        except all
        select * from expected
    ) as extra_rows
),

final as (
    select
        problem,
        product_id,
        quantity,
        last_updated
    from missing_from_report
    union all
    select
        problem,
        product_id,
        quantity,
        last_updated
    from not_in_join
)

select * from final
