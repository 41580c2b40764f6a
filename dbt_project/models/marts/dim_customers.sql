-- The current state of operations.customers: one row per live customer_id. The rules are in
-- cdc_current_state(); the cdc_apply incremental strategy applies an incremental run.
{{
    config(
        unique_key='customer_id',
        indexes=[
            {'columns': ['customer_id'], 'unique': true},
            {'columns': ['last_load_id']},
        ],
    )
}}

{%- set customers_columns = [
    'customer_name',
    'is_active',
    'created_at',
    'updated_at'
] %}

with

current_customers as (
    {{ cdc_current_state(
        ref('stg_operations__customers'), 'customer_id', customers_columns
    ) }}
),

final as (
    select
        customer_id,
        customer_name,
        is_active,
        created_at,
        updated_at,
        last_change_id,
        last_changed_at,
        last_change_operation,
        last_load_id
    from current_customers
)

select * from final
