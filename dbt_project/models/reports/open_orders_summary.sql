-- Open orders counted by delivery date and status, for `acme open_orders --summary`.
-- Orders without a delivery date form their own group (delivery_date null).
-- Counted from fact_orders, not from the open_orders report: when that view sorted, it
-- sorted every open order before they were counted (0.9 s at 1M orders).
-- The definition is macros/reports.sql, shared with its as-of twin (as_of/).

{{ open_orders_summary_report(ref('fact_orders')) }}
