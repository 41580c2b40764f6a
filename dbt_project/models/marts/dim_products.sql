-- The current state of operations.products: one row per live product_id. The rules are in
-- cdc_current_state(); the cdc_apply incremental strategy applies an incremental run.
{{
    config(
        unique_key='product_id',
        indexes=[
            {'columns': ['product_id'], 'unique': true},
            {'columns': ['last_load_id']},
        ],
    )
}}

{%- set products_columns = [
    'product_name',
    'barcode',
    'unit_price',
    'is_active',
    'created_at',
    'updated_at'
] %}

with

current_products as (
    {{ cdc_current_state(
        ref('stg_operations__products'), 'product_id', products_columns
    ) }}
),

final as (
    select
        product_id,
        product_name,
        barcode,
        unit_price,
        is_active,
        created_at,
        updated_at,
        last_change_id,
        last_changed_at,
        last_change_operation,
        last_load_id
    from current_products
)

select * from final
