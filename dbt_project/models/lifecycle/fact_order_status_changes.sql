-- One row per status interval of each order: how long it sat in a status, by commit time,
-- from fact_orders_history. The rules are in order_status_intervals().

{{ order_status_intervals(ref('fact_orders_history')) }}
