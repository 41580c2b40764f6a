-- Every open order (is_open_order()), for `acme open_orders`.
-- The definition is macros/reports.sql, shared with its as-of twin (as_of/).

{{ open_orders_report(ref('fact_orders')) }}
