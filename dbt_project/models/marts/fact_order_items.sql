-- The current state of operations.order_items: one row per live order_item_id. The rules are in
-- cdc_current_state(); the cdc_apply incremental strategy applies an incremental run.
-- Indexed by order_id too: fact_pending_order_items looks up the items of each changed order.
{{
    config(
        unique_key='order_item_id',
        indexes=[
            {'columns': ['order_item_id'], 'unique': true},
            {'columns': ['last_load_id']},
            {'columns': ['order_id']},
        ],
    )
}}

{%- set order_items_columns = [
    'order_id',
    'product_id',
    'quantity',
    'created_at',
    'updated_at'
] %}

with

current_order_items as (
    {{ cdc_current_state(
        ref('stg_operations__order_items'), 'order_item_id', order_items_columns
    ) }}
),

final as (
    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        created_at,
        updated_at,
        last_change_id,
        last_changed_at,
        last_change_operation,
        last_load_id
    from current_order_items
)

select * from final
