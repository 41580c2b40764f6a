{#-
    post-hook of fact_pending_order_items: drops the versions agg_pending_items_by_product no
    longer reads, those retired by a range it has already applied (all retired ones while it
    has applied none: its first build reads the current versions only). Holding
    fact_pending_order_items' lock, which agg_pending_items_by_product takes too, so it
    never runs while that model reads the versions.
-#}
{% macro prune_pending_item_versions() -%}
    -- a range in the removed_load_id index: retired versions only (nulls never match)
    delete from {{ this }} as versions
    where versions.removed_load_id <= (
        select coalesce(
            (
                select applied.through_load_id
                from {{ source('cdc', 'applied_loads') }} as applied
                where applied.model_name = 'agg_pending_items_by_product'
            ),
            9223372036854775807
        )
    )
{%- endmacro %}

{#-
    The oid of a relation, as a literal (0 when not executing, or when it does not exist yet:
    dbt compile before the first build): agg_pending_items_by_product stores the one of the
    fact_pending_order_items table it read.
-#}
{% macro relation_oid(relation) -%}
    {%- if execute -%}
        {{- return(run_query(
            "select coalesce(to_regclass('" ~ relation ~ "')::oid::bigint, 0)"
        ).columns[0].values()[0]) -}}
    {%- endif -%}
    {{- return(0) -}}
{%- endmacro %}

{#-
    Whether agg_pending_items_by_product (model_relation) holds rows derived from another
    table than the fact_pending_order_items whose oid is versions_oid (false when not
    executing).
-#}
{% macro derived_from_another_relation(model_relation, versions_oid) -%}
    {%- if execute -%}
        {{- return(run_query(
            "select exists (select from " ~ model_relation
            ~ " where source_relation_oid != " ~ versions_oid ~ ")"
        ).columns[0].values()[0]) -}}
    {%- endif -%}
    {{- return(false) -}}
{%- endmacro %}
