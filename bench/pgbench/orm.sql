-- The OLTP workload as an ORM sends it: the same transactions as oltp.sql, but every row is
-- its own single-row statement (the order, then each of its three items; or one status
-- update), so capture's per-statement cost is paid once per row.
-- Needs -D customers=N -D products=M -D orders=K (ids 1..N, 1..M and about 1..K exist).
\set kind random(1, 2)
\set customer random(1, :customers)
\set first_product random(1, :products)
\set quantity random(1, 20)
\set days random(0, 14)
\set target random(1, :orders)
\if :kind = 1
begin;
insert into operations.orders (customer_id, order_date, delivery_date, status)
values (
    :customer,
    now() at time zone 'utc',
    date_trunc('day', now() at time zone 'utc') + :days * interval '1 day',
    'PENDING'
)
returning order_id as new_order_id \gset
insert into operations.order_items (order_id, product_id, quantity)
values (:new_order_id, 1 + (:first_product + 7) % :products, :quantity);
insert into operations.order_items (order_id, product_id, quantity)
values (:new_order_id, 1 + (:first_product + 14) % :products, :quantity);
insert into operations.order_items (order_id, product_id, quantity)
values (:new_order_id, 1 + (:first_product + 21) % :products, :quantity);
commit;
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
