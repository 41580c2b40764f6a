-- The items of pending orders (is_pending_order()), one current version per item, with the
-- quantity and the latest change time of the item or its order: what reports.pending_items
-- adds up, kept here so agg_pending_items_by_product adds and subtracts what changed instead
-- of joining every item with its order on each read. Versions are retired, not deleted
-- (incremental_strategy version_apply): agg_pending_items_by_product reads what changed after
-- the range it applied from added_load_id and removed_load_id. The post-hook drops the
-- versions it no longer needs. The indexes but one hold the current versions only (partial
-- indexes, macros/get_create_index_sql.sql): retiring a version adds an entry to the
-- removed_load_id index alone, where it would add one to each.
{{
    config(
        incremental_strategy='version_apply',
        unique_key='order_item_id',
        indexes=[
            {'columns': ['order_item_id'], 'unique': true, 'where': 'removed_load_id is null'},
            {'columns': ['order_id'], 'where': 'removed_load_id is null'},
            {'columns': ['product_id', 'updated_at'], 'where': 'removed_load_id is null'},
            {'columns': ['added_load_id'], 'where': 'removed_load_id is null'},
            {'columns': ['removed_load_id'], 'where': 'removed_load_id is not null'},
        ],
        post_hook=["{{ prune_pending_item_versions() }}"],
    )
}}

{#- The lock first: nothing may read this model before it (cdc_wait_for_model_at_compile). -#}
{%- do cdc_wait_for_model_at_compile() -%}
{%- set upstream_marts = ['fact_orders', 'fact_order_items'] -%}
{%- set staged_orders = ref('stg_operations__orders') -%}
{%- set staged_order_items = ref('stg_operations__order_items') -%}
{%- set through_load_id = cdc_build_through_load_id() | trim -%}
{%- set state_through = cdc_state_through_sql(through_load_id) -%}
{%- set applied_load_id = cdc_applied_loads_of([this.identifier]).get(this.identifier) -%}
{%- do cdc_require_applied_through(
    upstream_marts, [through_load_id | int, applied_load_id or 0] | max
) -%}
{%- set reevaluate_all = not is_incremental() -%}
{%- if is_incremental() -%}
    {#-
        A truncate (a resync's too) removes keys that have no change of their own, and a
        model without a recorded range cannot tell what changed: every item is looked at.
    -#}
    {%- set reevaluate_all = applied_load_id is none
        or cdc_new_truncate_id(staged_orders, applied_load_id, through_load_id) | int > 0
        or cdc_new_truncate_id(staged_order_items, applied_load_id, through_load_id) | int > 0
    -%}
{%- endif %}

with

-- Not materialized: each is read more than once, and a materialized copy of a whole mart
-- would cost a scan of it where an index probe does.
orders as not materialized (
    select * from {{ ref('fact_orders') }}
),

order_items as not materialized (
    select * from {{ ref('fact_order_items') }}
),

{% if reevaluate_all %}

    pending_items as (
        select
            order_items.order_item_id,
            order_items.order_id,
            order_items.product_id,
            order_items.quantity,
            greatest(order_items.updated_at, orders.updated_at) as updated_at
        from order_items
        inner join orders
            on order_items.order_id = orders.order_id
        where {{ is_pending_order('orders.status') }}
    ),

{% else %}

    -- The orders and items with changes in the loads this build applies: an order's change
    -- (its status, its updated_at, its delete) can move every item of it in or out.
    changed_orders as (
        select distinct order_id
        from {{ staged_orders }}
        where
            load_id > {{ applied_load_id }} and load_id <= {{ through_load_id }}
            and order_id is not null
    ),

    changed_items as (
        select distinct order_item_id
        from {{ staged_order_items }}
        where
            load_id > {{ applied_load_id }} and load_id <= {{ through_load_id }}
            and order_item_id is not null
    ),

    -- Only a changed order that is pending now needs its items looked up: one that is not
    -- can only retire the versions this model holds for it (found by order_id below).
    changed_pending_orders as (
        select
            orders.order_id,
            orders.updated_at
        from changed_orders
        inner join orders
            on changed_orders.order_id = orders.order_id
        where {{ is_pending_order('orders.status') }}
    ),

    -- What the affected items hold now: every item of a changed pending order, and each
    -- changed item whose order is pending.
    pending_items as (
        select
            order_items.order_item_id,
            order_items.order_id,
            order_items.product_id,
            order_items.quantity,
            greatest(order_items.updated_at, changed_pending_orders.updated_at) as updated_at
        from changed_pending_orders
        inner join order_items
            on changed_pending_orders.order_id = order_items.order_id

        union

        select
            order_items.order_item_id,
            order_items.order_id,
            order_items.product_id,
            order_items.quantity,
            greatest(order_items.updated_at, orders.updated_at) as updated_at
        from changed_items
        inner join order_items
            on changed_items.order_item_id = order_items.order_item_id
        inner join orders
            on order_items.order_id = orders.order_id
        where {{ is_pending_order('orders.status') }}
    ),

{% endif %}

{% if is_incremental() %}

    -- The current versions of the affected items: the changed items', and those of the
    -- changed orders (an item of a changed order that is not a changed item has not moved,
    -- so its version is under that order).
    previous_versions as (
        {% if reevaluate_all %}
            select current_versions.*
            from {{ this }} as current_versions
            where current_versions.removed_load_id is null
        {% else %}
            -- two index probes per key, where an "or" of the two would scan every version
            select current_versions.*
            from changed_items
            inner join {{ this }} as current_versions
                on changed_items.order_item_id = current_versions.order_item_id
            where current_versions.removed_load_id is null

            union

            select current_versions.*
            from changed_orders
            inner join {{ this }} as current_versions
                on changed_orders.order_id = current_versions.order_id
            where current_versions.removed_load_id is null
        {% endif %}
    ),

    -- A version that no longer holds is retired; an unchanged one stays current, so a
    -- status change that keeps an order pending moves nothing downstream.
    retired_versions as (
        select
            previous_versions.order_item_id,
            previous_versions.order_id,
            previous_versions.product_id,
            previous_versions.quantity,
            previous_versions.updated_at,
            previous_versions.added_load_id,
            {{ state_through }} as removed_load_id
        from previous_versions
        where not exists (
            select
            from pending_items
            where
                pending_items.order_item_id = previous_versions.order_item_id
                and (
                    pending_items.order_id,
                    pending_items.product_id,
                    pending_items.quantity,
                    pending_items.updated_at
                ) is not distinct from (
                    previous_versions.order_id,
                    previous_versions.product_id,
                    previous_versions.quantity,
                    previous_versions.updated_at
                )
        )
    ),

    new_versions as (
        select pending_items.*
        from pending_items
        where not exists (
            select
            from previous_versions
            where
                previous_versions.order_item_id = pending_items.order_item_id
                and (
                    pending_items.order_id,
                    pending_items.product_id,
                    pending_items.quantity,
                    pending_items.updated_at
                ) is not distinct from (
                    previous_versions.order_id,
                    previous_versions.product_id,
                    previous_versions.quantity,
                    previous_versions.updated_at
                )
        )
    ),

{% else %}

    new_versions as (
        select * from pending_items
    ),

{% endif %}

final as (
    {% if is_incremental() %}
        select * from retired_versions

        union all

    {% endif %}
    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        updated_at,
        {{ state_through }} as added_load_id,
        null::bigint as removed_load_id
    from new_versions
)

select * from final
