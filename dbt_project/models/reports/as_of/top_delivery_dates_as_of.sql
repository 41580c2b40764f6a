-- reports.top_delivery_dates as it stood at the moment set in acme.as_of, for
-- `acme top_delivery_dates --as-of`:
-- the same definition over the marts as they stood then.

{{ top_delivery_dates_report(orders_as_of()) }}
