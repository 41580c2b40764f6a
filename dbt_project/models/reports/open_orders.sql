-- Every open order (is_open_order()), for `acme open_orders`.

with

orders as (
    select * from {{ ref('fact_orders') }}
),

open_orders as (
    select *
    from orders
    where {{ is_open_order('status') }}
),

final as (
    select
        order_id,
        customer_id,
        date_trunc('second', order_date) as order_date,
        date_trunc('second', delivery_date) as delivery_date,
        status
    from open_orders
)

select * from final
