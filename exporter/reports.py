"""The four report exports: which report model, which columns, in which order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Report:
    name: str
    relation: str
    columns: tuple[str, ...]
    order_by: str
    limited: bool = False


REPORTS = {
    report.name: report
    for report in (
        Report(
            "open_orders",
            "reports.open_orders",
            ("order_id", "customer_id", "order_date", "delivery_date", "status"),
            "delivery_date, status, order_id",
        ),
        Report(
            "open_orders_summary",
            "reports.open_orders_summary",
            ("delivery_date", "status", "order_count"),
            "delivery_date, status",
        ),
        Report(
            "top_delivery_dates",
            "reports.top_delivery_dates",
            ("delivery_date", "order_count"),
            "date_rank",
            limited=True,
        ),
        Report(
            "pending_items",
            "reports.pending_items",
            ("product_id", "quantity", "last_updated"),
            "product_id",
        ),
        Report(
            "top_customers",
            "reports.top_customers",
            ("customer_id", "customer_name", "total_orders"),
            "customer_rank",
            limited=True,
        ),
    )
}


def export_query(report: Report, limit: int | None) -> str:
    """The SELECT behind one export; limit is an int checked by the caller."""
    query = f"select {', '.join(report.columns)} from {report.relation} order by {report.order_by}"
    if report.limited and limit is not None:
        query += f" limit {int(limit)}"
    return query
