{#-
    What the pending-items history (fact_pending_item_intervals,
    agg_pending_items_by_product_history) reads at compile time. Both are derived from the
    orders' and items' histories, which only grow at the times of the changes that land: a
    new change starts versions at its time and ends the ones before it there. So an
    incremental build re-derives what lies at or after the earliest time among the changes
    it applies, except where that does not hold (pending_history_reevaluate_all).
-#}

{#-
    Whether the model must re-derive everything (the text true or false; false when not
    executing): it has no recorded range, or its range holds a truncate of orders or items
    (which ends versions of keys that have no change of their own, at the truncate's time),
    the landing of the resync floor (after which the histories start at the floor), or an
    order or item change without a commit time: dated by its statement's time, it can land
    after a change of the same key dated later, and move that key's history before its own
    time.
-#}
{% macro pending_history_reevaluate_all(applied_load_id, through_load_id) -%}
    {%- if not execute -%}
        {{- return('false') -}}
    {%- endif -%}
    {%- if applied_load_id is none -%}
        {{- return('true') -}}
    {%- endif -%}
    {%- set found = run_query(
        "select exists (select from " ~ ref('stg_operations__orders')
        ~ " where (change_operation = 'TRUNCATE' or committed_at is null) and load_id > "
        ~ applied_load_id ~ " and load_id <= " ~ through_load_id ~ ") or exists (select from "
        ~ ref('stg_operations__order_items')
        ~ " where (change_operation = 'TRUNCATE' or committed_at is null) and load_id > "
        ~ applied_load_id ~ " and load_id <= " ~ through_load_id ~ ") or exists (select from "
        ~ source('cdc', 'change_log') ~ " as floor_change where floor_change.change_id = "
        ~ history_floor_sql() ~ " and floor_change.load_id > " ~ applied_load_id ~ ")"
    ).columns[0].values()[0] -%}
    {{- return('true' if found else 'false') -}}
{%- endmacro %}

{#-
    The earliest time (commit time, or statement time without one) among the order and item
    changes landed after applied_load_id through through_load_id, as a timestamptz literal;
    'infinity' when there is none (also when not executing): nothing at or after it changed.
-#}
{% macro pending_history_changed_since(applied_load_id, through_load_id) -%}
    {%- if not execute -%}
        {{- return("'infinity'::timestamptz") -}}
    {%- endif -%}
    {%- set found = run_query(
        "select coalesce(min(change_time), 'infinity')::text from ("
        ~ " select min(coalesce(committed_at, changed_at)) as change_time from "
        ~ ref('stg_operations__orders') ~ " where load_id > " ~ applied_load_id
        ~ " and load_id <= " ~ through_load_id
        ~ " union all select min(coalesce(committed_at, changed_at)) from "
        ~ ref('stg_operations__order_items') ~ " where load_id > " ~ applied_load_id
        ~ " and load_id <= " ~ through_load_id ~ ") as changes"
    ).columns[0].values()[0] -%}
    {{- return("'" ~ found ~ "'::timestamptz") -}}
{%- endmacro %}
