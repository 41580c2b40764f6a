-- Customers ranked by their number of pending orders (is_pending_order()), for
-- `acme top_customers` (the CLI keeps the first --limit ranks). Ties go to the lower id.

with

orders as (
    select * from {{ ref('fact_orders') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

pending_orders_by_customer as (
    select
        customer_id,
        count(*) as total_orders
    from orders
    where {{ is_pending_order('status') }}
    group by customer_id
),

final as (
    select
        pending_orders_by_customer.customer_id,
        customers.customer_name,
        pending_orders_by_customer.total_orders,
        row_number() over (
            order by
                pending_orders_by_customer.total_orders desc,
                pending_orders_by_customer.customer_id asc
        ) as customer_rank
    from pending_orders_by_customer
    left join customers
        on pending_orders_by_customer.customer_id = customers.customer_id
)

select * from final
