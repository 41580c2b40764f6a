-- reports.order_lifecycle as it stood at the moment set in acme.as_of, for
-- `acme order_lifecycle --as-of`: only the intervals that had ended by then.

{{ order_lifecycle_report(
    '(' ~ order_status_intervals(ref('fact_orders_history')) ~ ')',
    as_of_moment()
) }}
