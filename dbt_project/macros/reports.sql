{#-
    The report definitions, each stated once over the relations it reads: the live reports
    call them with the marts, the as-of reports (models/reports/as_of/) with the marts as they
    stood at a moment (orders_as_of() and the others below, subqueries over the history
    models). Each returns one SELECT of the report's columns. pending_items_as_of is the one
    exception: the join would read every item version at 1M orders, so it reads a history
    derived for it (models/history/agg_pending_items_by_product_history.sql), which its tests
    hold to this definition.

    The as-of relations are subqueries, not views of their own: dbt replaces a view by
    dropping the old one with cascade, which would drop every report view built on it until
    the same invocation rebuilt it, and a reader (a concurrent export or data test) would
    find the report missing. A report view on tables alone is replaced in one rename.
-#}

{% macro open_orders_report(orders) %}
    with

    open_orders as (
        select *
        from {{ orders }} as orders
        where {{ is_open_order('status') }}
    ),

    final as (
        select
            order_id,
            customer_id,
            date_trunc('second', order_date) as order_date,
            date_trunc('second', delivery_date) as delivery_date,
            status
        from open_orders
    )

    select * from final
{% endmacro %}

{% macro open_orders_summary_report(orders) %}
    with

    open_orders as (
        select *
        from {{ orders }} as orders
        where {{ is_open_order('status') }}
    ),

    orders_by_date_and_status as (
        select
            delivery_date::date as delivery_date,
            status,
            count(*) as order_count
        from open_orders
        group by delivery_date::date, status
    ),

    final as (
        select
            delivery_date,
            status,
            order_count
        from orders_by_date_and_status
    )

    select * from final
{% endmacro %}

{% macro top_delivery_dates_report(orders) %}
    with

    open_orders as (
        select *
        from {{ orders }} as orders
        where {{ is_open_order('status') }}
    ),

    orders_by_date as (
        select
            delivery_date::date as delivery_date,
            count(*) as order_count
        from open_orders
        where delivery_date is not null
        group by delivery_date::date
    ),

    final as (
        select
            delivery_date,
            order_count,
            row_number() over (
                order by order_count desc, delivery_date asc
            ) as date_rank
        from orders_by_date
    )

    select * from final
{% endmacro %}

{#-
    The plain pending-items answer: every item of a pending order joined with it and grouped
    by product. The live report reads the maintained aggregate instead (the data test
    pending_items_equal_the_join_over_the_marts holds it to this), and the as-of report the
    pending-items history (tests/test_pending_items.py holds it to this at every moment).
-#}
{% macro pending_items_report(orders, order_items) %}
    with

    pending_orders as (
        select *
        from {{ orders }} as orders
        where {{ is_pending_order('status') }}
    ),

    pending_order_items as (
        select
            order_items.product_id,
            order_items.quantity,
            greatest(order_items.updated_at, pending_orders.updated_at) as updated_at
        from {{ order_items }} as order_items
        inner join pending_orders
            on order_items.order_id = pending_orders.order_id
    ),

    final as (
        select
            product_id,
            sum(quantity) as quantity,
            date_trunc('second', max(updated_at)) as last_updated
        from pending_order_items
        group by product_id
    )

    select * from final
{% endmacro %}

{% macro top_customers_report(orders, customers) %}
    with

    pending_orders_by_customer as (
        select
            customer_id,
            count(*) as total_orders
        from {{ orders }} as orders
        where {{ is_pending_order('status') }}
        group by customer_id
    ),

    final as (
        select
            pending_orders_by_customer.customer_id,
            customers.customer_name,
            pending_orders_by_customer.total_orders,
            row_number() over (
                order by
                    pending_orders_by_customer.total_orders desc,
                    pending_orders_by_customer.customer_id asc
            ) as customer_rank
        from pending_orders_by_customer
        left join {{ customers }} as customers
            on pending_orders_by_customer.customer_id = customers.customer_id
    )

    select * from final
{% endmacro %}

{#-
    The moment an as-of report is read at: the session's acme.as_of setting (the exporter
    sets it with SET LOCAL), a timestamptz; null when unset, so an as-of view read without it
    is empty rather than wrong.
-#}
{% macro as_of_moment() -%}
    nullif(current_setting('acme.as_of', true), '')::timestamptz
{%- endmacro %}

{#-
    The versions of a history model in force at as_of_moment(), as a parenthesized subquery
    of the mart's source columns: started at or before it (a transaction that committed at
    that moment is in) and not ended by then.
-#}
{% macro versions_as_of(history, columns) -%}
    (
        select {{ columns | join(', ') }}
        from {{ history }}
        where
            valid_from <= {{ as_of_moment() }}
            and (valid_to is null or valid_to > {{ as_of_moment() }})
    )
{%- endmacro %}

{#- fact_orders as it stood at as_of_moment(). -#}
{% macro orders_as_of() -%}
    {{ versions_as_of(
        ref('fact_orders_history'),
        ['order_id', 'customer_id', 'order_date', 'delivery_date', 'status', 'created_at',
         'updated_at']
    ) }}
{%- endmacro %}

{#- fact_order_items as it stood at as_of_moment(). -#}
{% macro order_items_as_of() -%}
    {{ versions_as_of(
        ref('fact_order_items_history'),
        ['order_item_id', 'order_id', 'product_id', 'quantity', 'created_at', 'updated_at']
    ) }}
{%- endmacro %}

{#- dim_customers as it stood at as_of_moment(). -#}
{% macro customers_as_of() -%}
    {{ versions_as_of(
        ref('dim_customers_history'),
        ['customer_id', 'customer_name', 'is_active', 'created_at', 'updated_at']
    ) }}
{%- endmacro %}

{#-
    How long orders sat in each status: the status intervals (fact_order_status_changes) that
    ended in the window the session sets (acme.lifecycle_since, inclusive, and
    acme.lifecycle_until, exclusive; either unset leaves that side open), counted with their
    median, 90th percentile and longest duration in hours. ended_by: the moment an interval
    must have ended by to count (as_of_moment() for the as-of twin; open for the live one).
-#}
{% macro order_lifecycle_report(status_changes, ended_by="'infinity'::timestamptz") %}
    with

    ended_intervals as (
        select
            status,
            extract(epoch from duration) / 3600 as hours
        from {{ status_changes }} as status_changes
        where
            left_at <= {{ ended_by }}
            and left_at >= coalesce(
                nullif(current_setting('acme.lifecycle_since', true), '')::timestamptz,
                '-infinity'
            )
            and left_at < coalesce(
                nullif(current_setting('acme.lifecycle_until', true), '')::timestamptz,
                'infinity'
            )
    ),

    final as (
        select
            status,
            count(*) as intervals,
            round(
                (percentile_cont(0.5) within group (order by hours))::numeric, 3
            ) as median_hours,
            round(
                (percentile_cont(0.9) within group (order by hours))::numeric, 3
            ) as p90_hours,
            round(max(hours)::numeric, 3) as max_hours
        from ended_intervals
        group by status
    )

    select * from final
{% endmacro %}
