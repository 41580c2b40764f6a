-- Customers ranked by their number of pending orders (is_pending_order()), for
-- `acme top_customers` (the CLI keeps the first --limit ranks). Ties go to the lower id.
-- The definition is macros/reports.sql, shared with its as-of twin (as_of/).

{{ top_customers_report(ref('fact_orders'), ref('dim_customers')) }}
