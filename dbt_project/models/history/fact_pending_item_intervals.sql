-- Every interval during which an order item counted in reports.pending_items: one row per
-- overlap of a version of the item (fact_order_items_history) with a pending version of its
-- order (fact_orders_history), from the later of their starts to the earlier of their ends.
-- What agg_pending_items_by_product_history adds up, and where `acme pending_items --as-of`
-- looks up each product's latest change time. An incremental run re-derives every interval
-- of each order a change in its range touched (the history_apply strategy, keyed by order).
{{
    config(
        unique_key='order_id',
        indexes=[
            {'columns': ['order_id']},
            {'columns': ['pending_from']},
            {'columns': ['pending_to'], 'where': 'pending_to is not null'},
            {'columns': ['product_id', 'last_updated'], 'where': 'not updated_after_start'},
            {'columns': ['product_id'], 'where': 'updated_after_start'},
        ],
    )
}}

{#- The lock first: nothing may read this model before it (cdc_wait_for_model_at_compile). -#}
{%- do cdc_wait_for_model_at_compile() -%}
{%- set through_load_id = cdc_build_through_load_id() | trim -%}
{%- set applied_load_id = cdc_applied_loads_of([this.identifier]).get(this.identifier) -%}
{%- do cdc_require_applied_through(
    ['fact_orders_history', 'fact_order_items_history'],
    [through_load_id | int, applied_load_id or 0] | max
) -%}
{%- set reevaluate_all = not is_incremental()
    or pending_history_reevaluate_all(applied_load_id, through_load_id) == 'true' -%}
{%- set staged_orders = ref('stg_operations__orders') -%}
{%- set staged_order_items = ref('stg_operations__order_items') -%}

with

-- Not materialized: read by order_id, an index probe per affected order.
order_versions as not materialized (
    select * from {{ ref('fact_orders_history') }}
),

item_versions as not materialized (
    select * from {{ ref('fact_order_items_history') }}
),

{% if not reevaluate_all %}

    -- The orders whose intervals a change in this range can move: the changed orders, and
    -- every order a changed item belongs to in any version (an item can move between orders).
    affected_orders as (
        select order_id
        from {{ staged_orders }}
        where
            load_id > {{ applied_load_id }} and load_id <= {{ through_load_id }}
            and order_id is not null

        union

        select item_versions.order_id
        from (
            select distinct order_item_id
            from {{ staged_order_items }}
            where
                load_id > {{ applied_load_id }} and load_id <= {{ through_load_id }}
                and order_item_id is not null
        ) as changed_items
        inner join item_versions
            on changed_items.order_item_id = item_versions.order_item_id
        where item_versions.order_id is not null
    ),

{% endif %}

-- Versions valid at no moment (changed again in their own transaction) never counted.
pending_order_versions as (
    select
        order_versions.order_id,
        order_versions.updated_at,
        order_versions.valid_from,
        order_versions.valid_to,
        order_versions.change_id
    from {% if not reevaluate_all %}
            affected_orders
        inner join order_versions
            on affected_orders.order_id = order_versions.order_id
    {% else %}
            order_versions
    {% endif %}
    where
        {{ is_pending_order('order_versions.status') }}
        and (order_versions.valid_to is null or order_versions.valid_to > order_versions.valid_from)
),

intervals as (
    select
        item_versions.order_item_id,
        item_versions.order_id,
        item_versions.product_id,
        item_versions.quantity,
        -- as the live report: the later of the two source updated_at values
        greatest(item_versions.updated_at, pending_order_versions.updated_at) as last_updated,
        greatest(item_versions.valid_from, pending_order_versions.valid_from) as pending_from,
        -- least() skips nulls: null only while both versions are current
        least(item_versions.valid_to, pending_order_versions.valid_to) as pending_to,
        item_versions.change_id,
        pending_order_versions.change_id as order_change_id
    from pending_order_versions
    inner join item_versions
        on pending_order_versions.order_id = item_versions.order_id
    where
        item_versions.valid_from < coalesce(pending_order_versions.valid_to, 'infinity')
        and pending_order_versions.valid_from < coalesce(item_versions.valid_to, 'infinity')
        -- an item version valid at no moment never counted: changed again in its own
        -- transaction, or (without commit times) ended by a change dated before it
        and item_versions.valid_from < coalesce(item_versions.valid_to, 'infinity')
),

-- An interval whose latest change time is later than its start (an updated_at the source's
-- application set ahead of the commit) is marked: the as-of lookup of the latest change time
-- reads the others from that time down, and these on their own.
marked_intervals as (
    select
        *,
        coalesce(last_updated > (pending_from at time zone 'UTC'), false) as updated_after_start
    from intervals
),

final as (
    select
        order_id,
        order_item_id,
        product_id,
        quantity,
        last_updated,
        updated_after_start,
        pending_from,
        pending_to,
        change_id,
        order_change_id
    from marked_intervals

    {% if is_incremental() %}

        union all

        -- an order this model holds that has no interval now: its old intervals go and
        -- nothing is added (history_apply inserts no row with a null change_id)
        select
            held_orders.order_id,
            null::bigint,
            null::bigint,
            null::integer,
            null::timestamp,
            null::boolean,
            null::timestamptz,
            null::timestamptz,
            null::bigint,
            null::bigint
        from (
            {% if reevaluate_all %}
                select distinct order_id from {{ this }}
            {% else %}
                select order_id from affected_orders
            {% endif %}
        ) as held_orders
        where not exists (
            select
            from marked_intervals
            where marked_intervals.order_id = held_orders.order_id
        )

    {% endif %}
)

select * from final
