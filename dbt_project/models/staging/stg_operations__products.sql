-- One row per staged change of operations.products, its row image decoded into typed columns
-- (null for DELETE and TRUNCATE; see staged_changes_of()).

with

changes as (
    {{ staged_changes_of('products') }}
),

final as (
    select
        change_id,
        txid,
        load_id,
        change_operation,
        changed_at,
        committed_at,
        primary_key,
        (primary_key ->> 'product_id')::bigint as product_id,
        (row_image ->> 'product_name')::character varying(500) as product_name,
        (row_image ->> 'barcode')::character varying(64) as barcode,
        (row_image ->> 'unit_price')::numeric(12, 2) as unit_price,
        (row_image ->> 'is_active')::boolean as is_active,
        (row_image ->> 'created_at')::timestamp without time zone as created_at,
        (row_image ->> 'updated_at')::timestamp without time zone as updated_at
    from changes
)

select * from final
