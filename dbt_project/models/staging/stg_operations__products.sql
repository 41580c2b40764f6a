-- One row per staged change of operations.products. A change's row image is decoded into
-- typed columns only for INSERT, UPDATE and SNAPSHOT; they are null for DELETE and TRUNCATE.
-- Keys the jsonb holds beyond these columns are ignored, so a new source column breaks nothing.

with

source as (
    select * from {{ source('cdc', 'change_log') }}
    where table_schema = 'operations' and table_name = 'products'
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
        (primary_key ->> 'product_id')::bigint as product_id,
        (row_image ->> 'product_name')::varchar(500) as product_name,
        (row_image ->> 'barcode')::varchar(64) as barcode,
        (row_image ->> 'unit_price')::numeric(12, 2) as unit_price,
        (row_image ->> 'is_active')::boolean as is_active,
        (row_image ->> 'created_at')::timestamp as created_at,
        (row_image ->> 'updated_at')::timestamp as updated_at
    from changes
)

select * from final
