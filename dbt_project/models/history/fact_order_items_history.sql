-- Every version of operations.order_items: one row per version of an order item, from the insert,
-- update or snapshot that started it to the change or truncate that ended it. The rules are in
-- cdc_history(); the history_apply incremental strategy applies an incremental run.
{{
    config(
        unique_key='order_item_id',
        indexes=[
            {'columns': ['order_item_id']},
            {'columns': ['order_id']},
            {'columns': ['change_id'], 'unique': true},
            {'columns': ['valid_from']},
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

order_items_versions as (
    {{ cdc_history(
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
        valid_from,
        valid_to,
        is_current,
        change_id,
        txid,
        ended_by,
        ended_by_change_id,
        last_load_id
    from order_items_versions
)

select * from final
