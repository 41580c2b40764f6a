-- Per product, the quantity on pending orders' items, how many such items there are and
-- their latest change time: reports.pending_items without reading every pending item. An
-- incremental run adds the versions of fact_pending_order_items that became current after
-- the range this model applied and subtracts those retired since; the latest change time,
-- a max that cannot be subtracted, is looked up again (an index probe) only for a product
-- whose retired versions held it. A product left with no pending item is dropped
-- (post-hook).
{{
    config(
        incremental_strategy='delete+insert',
        unique_key='product_id',
        indexes=[
            {'columns': ['product_id'], 'unique': true},
        ],
        post_hook=["delete from {{ this }} where pending_item_count = 0"],
    )
}}

{#-
    This model's lock, then fact_pending_order_items' one: its versions, and what its
    post-hook prunes, stay as read here until this transaction commits.
-#}
{%- do cdc_wait_for_model_at_compile() -%}
{%- set versions_model = 'fact_pending_order_items' -%}
{%- set versions_relation = ref(versions_model) -%}
{%- do cdc_wait_for_model_at_compile(versions_model) -%}
{%- set through_load_id = cdc_build_through_load_id() | trim -%}
{%- set state_through = cdc_state_through_sql(through_load_id) -%}
{%- set applied_load_id = cdc_applied_loads_of([this.identifier]).get(this.identifier) -%}
{%- do cdc_require_applied_through(
    [versions_model], [through_load_id | int, applied_load_id or 0] | max
) -%}
{#-
    The versions are only comparable with the table they were read from: a rebuilt
    fact_pending_order_items (a --full-refresh of it alone, a restore) has new versions for
    what this model already counted, and it would count them again. Its relation's oid,
    stored in each row, tells; such a build, and one with no recorded range, recomputes.
-#}
{%- set versions_oid = relation_oid(versions_relation) -%}
{%- set recompute = not is_incremental() -%}
{%- if is_incremental() -%}
    {%- set recompute = applied_load_id is none
        or derived_from_another_relation(this, versions_oid) -%}
{%- endif %}
with

-- Not materialized: read twice, and a materialized copy would cost a scan of every version
-- where an index probe does.
versions as not materialized (
    select * from {{ versions_relation }}
),

{% if recompute %}

    current_versions as (
        select *
        from versions
        where {{ version_is_live('versions', state_through) }}
    ),

    product_totals as (
        select
            product_id,
            sum(quantity)::bigint as quantity,
            count(*)::bigint as pending_item_count,
            max(updated_at) as last_updated
        from current_versions
        group by product_id
    ),

    {% if is_incremental() %}

        -- products this model holds that have no pending item now: emitted with a count
        -- of 0, so delete+insert replaces them and the post-hook drops them
        emptied_products as (
            select
                previous_totals.product_id,
                0::bigint as quantity,
                0::bigint as pending_item_count,
                null::timestamp as last_updated
            from {{ this }} as previous_totals
            where not exists (
                select
                from product_totals
                where product_totals.product_id = previous_totals.product_id
            )
        ),

    {% endif %}

    new_totals as (
        select * from product_totals
        {% if is_incremental() %}
            union all
            select * from emptied_products
        {% endif %}
    ),

{% else %}

    -- The versions added or retired after the range applied: those retired since (the
    -- removed_load_id index), and the current ones added since (the added_load_id index of
    -- current versions); those whose currency differs between that range and this one count.
    changed_versions as (
        select
            versions.product_id,
            versions.quantity,
            versions.updated_at,
            {{ version_is_live('versions', applied_load_id) }} as was_current,
            {{ version_is_live('versions', state_through) }} as is_current
        from versions
        where versions.removed_load_id > {{ applied_load_id }}

        union all

        select
            versions.product_id,
            versions.quantity,
            versions.updated_at,
            {{ version_is_live('versions', applied_load_id) }} as was_current,
            {{ version_is_live('versions', state_through) }} as is_current
        from versions
        where versions.removed_load_id is null and versions.added_load_id > {{ applied_load_id }}
    ),

    product_changes as (
        select
            product_id,
            sum(
                case when is_current then quantity else 0 end
                - case when was_current then quantity else 0 end
            ) as quantity_change,
            sum(is_current::int - was_current::int) as item_count_change,
            max(case when is_current then updated_at end) as added_max,
            max(case when was_current then updated_at end) as retired_max
        from changed_versions
        where is_current != was_current
        group by product_id
    ),

    changed_totals as (
        select
            product_changes.product_id,
            (
                coalesce(previous_totals.quantity, 0) + product_changes.quantity_change
            )::bigint as quantity,
            (
                coalesce(previous_totals.pending_item_count, 0)
                + product_changes.item_count_change
            )::bigint as pending_item_count,
            previous_totals.last_updated as previous_last_updated,
            product_changes.added_max,
            product_changes.retired_max
        from product_changes
        left join {{ this }} as previous_totals
            on product_changes.product_id = previous_totals.product_id
    ),

    -- The max: the previous one or an added version's, unless a retired version held it
    -- (or there is none to compare with); then it is looked up again in the current
    -- versions, a backward probe of their (product_id, updated_at) index (and of the
    -- removed_load_id index for a version retired only by a newer range than this one).
    new_totals as (
        select
            changed_totals.product_id,
            changed_totals.quantity,
            changed_totals.pending_item_count,
            case
                when
                    changed_totals.retired_max is null
                    or changed_totals.retired_max < changed_totals.previous_last_updated
                    then greatest(changed_totals.previous_last_updated, changed_totals.added_max)
                else greatest(
                    (
                        select max(latest.updated_at)
                        from versions as latest
                        where
                            latest.product_id = changed_totals.product_id
                            and latest.removed_load_id is null
                            and latest.added_load_id <= {{ state_through }}
                    ),
                    (
                        select max(latest.updated_at)
                        from versions as latest
                        where
                            latest.product_id = changed_totals.product_id
                            and latest.removed_load_id > {{ state_through }}
                            and latest.added_load_id <= {{ state_through }}
                    )
                )
            end as last_updated
        from changed_totals
    ),

{% endif %}

final as (
    select
        product_id,
        quantity,
        pending_item_count,
        last_updated,
        cast({{ versions_oid }} as bigint) as source_relation_oid
    from new_totals
)

select * from final
