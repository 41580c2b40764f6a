-- How long orders sat in each status, for `acme order_lifecycle`: the status intervals that
-- ended in the window the exporter sets. The definition is macros/reports.sql, shared with
-- its as-of twin (as_of/).

{{ order_lifecycle_report('(' ~ order_status_intervals(ref('fact_orders_history')) ~ ')') }}
