-- operations.customers as it stood at the moment set in acme.as_of: its mart's columns, from the
-- versions in force then. The as-of reports read it in place of the mart.

{{ versions_as_of(
    ref('dim_customers_history'),
    [
        'customer_id',
        'customer_name',
        'is_active',
        'created_at',
        'updated_at'
    ]
) }}
