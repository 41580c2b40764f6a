-- One row per staged change of operations.customers. A change's row image is decoded into
-- typed columns only for INSERT, UPDATE and SNAPSHOT; they are null for DELETE and TRUNCATE.
-- Keys the jsonb holds beyond these columns are ignored, so a new source column breaks nothing.

with

source as (
    select * from {{ source('cdc', 'change_log') }}
    where table_schema = 'operations' and table_name = 'customers'
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
        (primary_key ->> 'customer_id')::bigint as customer_id,
        (row_image ->> 'customer_name')::varchar(500) as customer_name,
        (row_image ->> 'is_active')::boolean as is_active,
        (row_image ->> 'created_at')::timestamp as created_at,
        (row_image ->> 'updated_at')::timestamp as updated_at
    from changes
)

select * from final
