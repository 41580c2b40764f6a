"""The four reports computed independently, by plain SQL on finance_db's source tables."""

from __future__ import annotations

import io

import psycopg2

OPEN = "status not in ('COMPLETED', 'CANCELLED')"

ORACLE_QUERIES = {
    "open_orders": f"""
        select order_id, customer_id, date_trunc('second', order_date) as order_date,
               date_trunc('second', delivery_date) as delivery_date, status
        from operations.orders where {OPEN}
        order by 4, 5, 1""",
    "open_orders_summary": f"""
        select delivery_date::date as delivery_date, status, count(*) as order_count
        from operations.orders where {OPEN}
        group by 1, 2 order by 1, 2""",
    "top_delivery_dates": f"""
        select delivery_date::date as delivery_date, count(*) as order_count
        from operations.orders where {OPEN} and delivery_date is not null
        group by 1 order by 2 desc, 1 limit {{limit}}""",
    "pending_items": """
        select i.product_id, sum(i.quantity) as quantity,
               date_trunc('second', max(greatest(i.updated_at, o.updated_at))) as last_updated
        from operations.order_items as i join operations.orders as o using (order_id)
        where o.status = 'PENDING'
        group by 1 order by 1""",
    "top_customers": """
        select o.customer_id, c.customer_name, count(*) as total_orders
        from operations.orders as o left join operations.customers as c using (customer_id)
        where o.status = 'PENDING'
        group by 1, 2 order by 3 desc, 1 limit {limit}""",
}


def expected_csv(finance_uri: str, report: str, limit: int = 3) -> str:
    """The CSV the export must produce, byte for byte."""
    conn = psycopg2.connect(finance_uri, options="-c datestyle=ISO,YMD")
    try:
        with conn, conn.cursor() as cur:
            out = io.BytesIO()
            query = ORACLE_QUERIES[report].format(limit=limit)
            cur.copy_expert(f"copy ({query}) to stdout with (format csv, header)", out)
            return out.getvalue().decode()
    finally:
        conn.close()
