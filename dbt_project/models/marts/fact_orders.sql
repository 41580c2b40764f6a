-- The current state of operations.orders: one row per live order_id. The rules are in
-- cdc_current_state(); the cdc_apply incremental strategy applies an incremental run.
{{
    config(
        unique_key='order_id',
        indexes=[
            {'columns': ['order_id'], 'unique': true},
            {'columns': ['last_load_id']},
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

current_orders as (
    {{ cdc_current_state(
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
        last_change_id,
        last_changed_at,
        last_change_operation,
        last_load_id
    from current_orders
)

select * from final
