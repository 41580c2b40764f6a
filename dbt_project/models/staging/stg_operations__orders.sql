-- One row per staged change of operations.orders. A change's row image is decoded into
-- typed columns only for INSERT, UPDATE and SNAPSHOT; they are null for DELETE and TRUNCATE.
-- Keys the jsonb holds beyond these columns are ignored, so a new source column breaks nothing.

with

source as (
    select * from {{ source('cdc', 'change_log') }}
    where table_schema = 'operations' and table_name = 'orders'
),

changes as (
    select
        change_id,
        load_id,
        operation as change_operation,
        changed_at,
        primary_key,
        case when operation in ('INSERT', 'UPDATE', 'SNAPSHOT') then new_row end as row_image
    from source
),

final as (
    select
        change_id,
        load_id,
        change_operation,
        changed_at,
        (primary_key ->> 'order_id')::bigint as order_id,
        (row_image ->> 'customer_id')::bigint as customer_id,
        (row_image ->> 'order_date')::timestamp as order_date,
        (row_image ->> 'delivery_date')::timestamp as delivery_date,
        (row_image ->> 'status')::varchar(50) as status,
        (row_image ->> 'created_at')::timestamp as created_at,
        (row_image ->> 'updated_at')::timestamp as updated_at
    from changes
)

select * from final
