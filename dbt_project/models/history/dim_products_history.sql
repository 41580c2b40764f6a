-- Every version of operations.products: one row per version of a product, from the insert, update
-- or snapshot that started it to the change or truncate that ended it. The rules are in
-- cdc_history(); the history_apply incremental strategy applies an incremental run.
{{
    config(
        unique_key='product_id',
        indexes=[
            {'columns': ['product_id']},
            {'columns': ['change_id'], 'unique': true},
            {'columns': ['valid_from']},
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

products_versions as (
    {{ cdc_history(
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
        valid_from,
        valid_to,
        is_current,
        change_id,
        txid,
        ended_by,
        ended_by_change_id,
        last_load_id
    from products_versions
)

select * from final
