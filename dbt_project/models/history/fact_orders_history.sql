-- Every version of operations.orders: one row per version of an order, from the insert, update or
-- snapshot that started it to the change or truncate that ended it. The rules are in cdc_history();
-- the history_apply incremental strategy applies an incremental run.
{{
    config(
        unique_key='order_id',
        indexes=[
            {'columns': ['order_id']},
            {'columns': ['change_id'], 'unique': true},
            {'columns': ['valid_from']},
        ],
    )
}}

{%- set orders_columns = [
    'customer_id',
    'order_date',
    'delivery_date',
    'status',
    'created_at',
    'updated_at'
] %}

with

orders_versions as (
    {{ cdc_history(
        ref('stg_operations__orders'), 'order_id', orders_columns
    ) }}
),

final as (
    select
        order_id,
        customer_id,
        order_date,
        delivery_date,
        status,
        created_at,
        updated_at,
        valid_from,
        valid_to,
        is_current,
        change_id,
        txid,
        ended_by,
        ended_by_change_id,
        last_load_id
    from orders_versions
)

select * from final
