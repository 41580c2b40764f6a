-- reports.open_orders as it stood at the moment set in acme.as_of, for
-- `acme open_orders --as-of`:
-- the same definition over the marts as they stood then.

{{ open_orders_report(orders_as_of()) }}
