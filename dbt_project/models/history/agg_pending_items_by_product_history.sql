-- reports.pending_items' totals as they stood at every moment: per product, one row per
-- moment an interval of fact_pending_item_intervals starts or ends, with the product's total
-- quantity and number of pending items from that moment until its next row. An as-of read
-- takes each product's row at or before the moment (one index probe per product) where the
-- join of every item version with its order's versions would read millions. An incremental
-- run recomputes, for each product with an interval starting or ending at or after the
-- earliest change it applies, every row from that time on, from the totals just before it
-- (the replace_from strategy).
{{
    config(
        incremental_strategy='replace_from',
        unique_key='product_id',
        indexes=[
            {'columns': ['product_id', 'valid_from'], 'unique': true},
            {'columns': ['valid_from']},
        ],
    )
}}

-- depends_on: {{ ref('stg_operations__orders') }}, {{ ref('stg_operations__order_items') }}
-- (pending_history_changed_since() reads their changes at compile time)

{#- The lock first: nothing may read this model before it (cdc_wait_for_model_at_compile). -#}
{%- do cdc_wait_for_model_at_compile() -%}
{%- set intervals_model = 'fact_pending_item_intervals' -%}
{#- And the intervals' lock: they stay as read here until this transaction commits. -#}
{%- do cdc_wait_for_model_at_compile(intervals_model) -%}
{%- set through_load_id = cdc_build_through_load_id() | trim -%}
{%- set applied_load_id = cdc_applied_loads_of([this.identifier]).get(this.identifier) -%}
{%- do cdc_require_applied_through(
    [intervals_model], [through_load_id | int, applied_load_id or 0] | max
) -%}
{%- set reevaluate_all = not is_incremental()
    or pending_history_reevaluate_all(applied_load_id, through_load_id) == 'true' -%}
{#- Every row from this moment on is recomputed ('-infinity': all of them). -#}
{%- set changed_since = "'-infinity'::timestamptz" if reevaluate_all
    else pending_history_changed_since(applied_load_id, through_load_id) %}

with

intervals as not materialized (
    select * from {{ ref(intervals_model) }}
),

-- Each interval adds its item at its start and takes it away at its end: the events at or
-- after changed_since (by the pending_from and pending_to indexes when incremental).
events as (
    select
        product_id,
        pending_from as changed_at,
        quantity,
        1 as item_count
    from intervals
    where pending_from >= {{ changed_since }}

    union all

    select
        product_id,
        pending_to,
        -quantity as quantity,
        -1 as item_count
    from intervals
    where pending_to >= {{ changed_since }}
),

changes as (
    select
        product_id,
        changed_at,
        sum(quantity) as quantity_change,
        sum(item_count) as item_count_change
    from events
    group by product_id, changed_at
),

{% if reevaluate_all %}

    totals as (
        select
            product_id,
            changed_at,
            sum(quantity_change) over product_moments as quantity,
            sum(item_count_change) over product_moments as pending_item_count
        from changes
        window product_moments as (partition by product_id order by changed_at)
    ),

{% else %}

    -- Each changed product's totals just before changed_since: its latest row before it.
    starting_totals as (
        select
            changed_products.product_id,
            coalesce(previous.quantity, 0) as quantity,
            coalesce(previous.pending_item_count, 0) as pending_item_count
        from (select distinct product_id from changes) as changed_products
        left join lateral (
            select
                product_totals.quantity,
                product_totals.pending_item_count
            from {{ this }} as product_totals
            where
                product_totals.product_id = changed_products.product_id
                and product_totals.valid_from < {{ changed_since }}
            order by product_totals.valid_from desc
            limit 1
        ) as previous on true
    ),

    totals as (
        select
            changes.product_id,
            changes.changed_at,
            starting_totals.quantity
            + sum(changes.quantity_change) over product_moments as quantity,
            starting_totals.pending_item_count
            + sum(changes.item_count_change) over product_moments as pending_item_count
        from changes
        inner join starting_totals
            on changes.product_id = starting_totals.product_id
        window product_moments as (partition by changes.product_id order by changes.changed_at)
    ),

{% endif %}

final as (
    select
        product_id,
        changed_at as valid_from,
        quantity::bigint as quantity,
        pending_item_count::bigint as pending_item_count
    from totals

    {% if is_incremental() %}

        union all

        -- the marker: every row from this moment on is replaced
        select
            null::bigint,
            {{ changed_since }},
            null::bigint,
            null::bigint

    {% endif %}
)

select * from final
