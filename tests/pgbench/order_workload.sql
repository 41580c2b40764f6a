-- The order workload for pgbench (tests/test_torture.py, tests/test_crash.py,
-- tests/test_restarts.py): one script run is one transaction of one kind, drawn at random.
-- Needs -D customers=N -D products=M (ids 1..N and 1..M exist) and the operations schema.
--
-- It never deadlocks with itself: every transaction writes at most one order row, and an
-- order's items are only ever locked after the order (a delete cascades from the order;
-- a quantity change locks a single item), so no two transactions wait on each other in a
-- cycle.
\set kind random(1, 100)
\set customer random(1, :customers)
\set items random(1, 10)
\set first_product random(1, :products)
\set step random(1, 13)
\set quantity random(1, 20)
\set days random(0, 14)
\set pick random(1, 1000000)
\set twist random(1, 100)
select coalesce(max(order_id), 0) as max_order from operations.orders \gset
\set target 1 + :pick % (:max_order + 1)
\if :kind <= 45
-- A new order with 1 to 10 items.
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
select new_order.order_id, 1 + (:first_product + n * :step) % :products, :quantity + n
from new_order cross join generate_series(1, :items) as n;
\elif :kind <= 75
-- The next status of the first open order at or after a random one.
update operations.orders
set status = case
    when status = 'PENDING' then 'PROCESSING'
    when status = 'PROCESSING' and :twist <= 20 then 'REPROCESSING'
    else 'COMPLETED'
end
where order_id = (
    select order_id from operations.orders
    where order_id >= :target and status in ('PENDING', 'PROCESSING', 'REPROCESSING')
    order by order_id
    limit 1
);
\elif :kind <= 85
-- A cancellation.
update operations.orders
set status = 'CANCELLED'
where order_id = (
    select order_id from operations.orders
    where order_id >= :target and status in ('PENDING', 'PROCESSING')
    order by order_id
    limit 1
);
\elif :kind <= 93
-- A changed quantity on one item.
update operations.order_items
set quantity = :quantity
where order_item_id = (
    select order_item_id from operations.order_items
    where order_id >= :target
    order by order_id, order_item_id
    limit 1
);
\else
-- A deleted order; its items go with it.
delete from operations.orders
where order_id = (
    select order_id from operations.orders
    where order_id >= :target
    order by order_id
    limit 1
);
\endif
