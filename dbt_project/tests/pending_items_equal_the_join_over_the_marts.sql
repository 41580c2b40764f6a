-- reports.pending_items, maintained by adding and subtracting (fact_pending_order_items,
-- agg_pending_items_by_product), equals the plain answer: every item of a pending order in
-- the marts, joined and grouped by product (pending_items_report()). Returns one row per
-- difference. Meaningful when the marts and the two maintained models have applied the same
-- range, as every build of them all leaves them.

with

expected as (
    {{ pending_items_report(ref('fact_orders'), ref('fact_order_items')) }}
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
