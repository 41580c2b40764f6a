-- Every version of operations.customers: one row per version of a customer, from the insert, update
-- or snapshot that started it to the change or truncate that ended it. The rules are in
-- cdc_history(); the history_apply incremental strategy applies an incremental run.
{{
    config(
        unique_key='customer_id',
        indexes=[
            {'columns': ['customer_id']},
            {'columns': ['change_id'], 'unique': true},
            {'columns': ['valid_from']},
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

customers_versions as (
    {{ cdc_history(
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
        valid_from,
        valid_to,
        is_current,
        change_id,
        txid,
        ended_by,
        ended_by_change_id,
        last_load_id
    from customers_versions
)

select * from final
