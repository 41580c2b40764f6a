-- One row per staged change of operations.orders, its row image decoded into typed columns
-- (null for DELETE and TRUNCATE; see staged_changes_of()).

with

changes as (
    {{ staged_changes_of('orders') }}
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
        (primary_key ->> 'order_id')::bigint as order_id,
        (row_image ->> 'customer_id')::bigint as customer_id,
        (row_image ->> 'order_date')::timestamp without time zone as order_date,
        (row_image ->> 'delivery_date')::timestamp without time zone as delivery_date,
        (row_image ->> 'status')::character varying(50) as status,
        (row_image ->> 'created_at')::timestamp without time zone as created_at,
        (row_image ->> 'updated_at')::timestamp without time zone as updated_at
    from changes
)

select * from final
