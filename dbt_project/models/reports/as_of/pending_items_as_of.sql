-- reports.pending_items as it stood at the moment set in acme.as_of, for
-- `acme pending_items --as-of`:
-- the same definition over the marts as they stood then. The live
-- report reads a maintained aggregate; this computes the same answer from the join.

{{ pending_items_report(orders_as_of(), order_items_as_of()) }}
