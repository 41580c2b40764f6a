-- reports.top_customers as it stood at the moment set in acme.as_of, for
-- `acme top_customers --as-of`:
-- the same definition over the marts as they stood then.

{{ top_customers_report(orders_as_of(), customers_as_of()) }}
