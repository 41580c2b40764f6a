-- One row per staged change of operations.order_items, its row image decoded into typed columns
-- (null for DELETE and TRUNCATE; see staged_changes_of()).

with

changes as (
    {{ staged_changes_of('order_items') }}
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
        (primary_key ->> 'order_item_id')::bigint as order_item_id,
        (row_image ->> 'order_id')::bigint as order_id,
        (row_image ->> 'product_id')::bigint as product_id,
        (row_image ->> 'quantity')::integer as quantity,
        (row_image ->> 'created_at')::timestamp without time zone as created_at,
        (row_image ->> 'updated_at')::timestamp without time zone as updated_at
    from changes
)

select * from final
