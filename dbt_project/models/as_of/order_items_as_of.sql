-- operations.order_items as it stood at the moment set in acme.as_of: its mart's columns, from the
-- versions in force then. The as-of reports read it in place of the mart.

{{ versions_as_of(
    ref('fact_order_items_history'),
    [
        'order_item_id',
        'order_id',
        'product_id',
        'quantity',
        'created_at',
        'updated_at'
    ]
) }}
