-- reports.open_orders_summary as it stood at the moment set in acme.as_of, for
-- `acme open_orders --summary --as-of`:
-- the same definition over the marts as they stood then.

{{ open_orders_summary_report(orders_as_of()) }}
