-- The OLTP order workload of the capture-overhead and freshness benchmarks: half the
-- transactions place an order with 1 to 10 items, half move an order to its next status.
-- Needs -D customers=N -D products=M -D orders=K (ids 1..N, 1..M and about 1..K exist).
\set kind random(1, 2)
\set customer random(1, :customers)
\set items random(1, 10)
\set first_product random(1, :products)
\set quantity random(1, 20)
\set days random(0, 14)
\set target random(1, :orders)
\if :kind = 1
with new_order as (
    insert into operations.orders (customer_id, order_date, delivery_date, status)
    values (
        :customer,
        now() at time zone 'utc',
        date_trunc('day', now() at time zone 'utc') + :days * interval '1 day',
        'PENDING'
    )
    returning order_id
)
insert into operations.order_items (order_id, product_id, quantity)
select new_order.order_id, 1 + (:first_product + n * 7) % :products, :quantity
from new_order cross join generate_series(1, :items) as n;
\else
update operations.orders
set status = case status
    when 'PENDING' then 'PROCESSING'
    when 'PROCESSING' then 'REPROCESSING'
    when 'REPROCESSING' then 'COMPLETED'
    else 'PENDING'
end
where order_id = :target;
\endif
