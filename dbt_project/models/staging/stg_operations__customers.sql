-- One row per staged change of operations.customers, its row image decoded into typed columns
-- (null for DELETE and TRUNCATE; see staged_changes_of()).

with

changes as (
    {{ staged_changes_of('customers') }}
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
        (primary_key ->> 'customer_id')::bigint as customer_id,
        (row_image ->> 'customer_name')::character varying(500) as customer_name,
        (row_image ->> 'is_active')::boolean as is_active,
        (row_image ->> 'created_at')::timestamp without time zone as created_at,
        (row_image ->> 'updated_at')::timestamp without time zone as updated_at
    from changes
)

select * from final
