-- operations.orders as it stood at the moment set in acme.as_of: its mart's columns, from the
-- versions in force then. The as-of reports read it in place of the mart.

{{ versions_as_of(
    ref('fact_orders_history'),
    [
        'order_id',
        'customer_id',
        'order_date',
        'delivery_date',
        'status',
        'created_at',
        'updated_at'
    ]
) }}
