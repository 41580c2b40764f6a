-- Per product, the quantity on pending orders (is_pending_order()) and the latest change
-- time of those items or their orders, for `acme pending_items`. Items count only while
-- their order exists.

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

items_by_product as (
    select
        product_id,
        sum(quantity) as quantity,
        max(updated_at) as last_updated
    from pending_order_items
    group by product_id
),

final as (
    select
        product_id,
        quantity,
        date_trunc('second', last_updated) as last_updated
    from items_by_product
)

select * from final
