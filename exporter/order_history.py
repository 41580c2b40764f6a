"""`acme order_history ORDER_ID`: every version of one order and of its items, from the
history models: what an operator asks when a customer calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connections.connect import connected
from connections.errors import ExportError
from connections.settings import ANALYTICS

ORDER_VERSIONS = """
    select valid_from, valid_to, status, delivery_date, customer_id, ended_by
    from analytics.fact_orders_history
    where order_id = %s
    order by change_id
"""

# The item versions while they belonged to the order (an item moved to another order has
# its later versions there).
ITEM_VERSIONS = """
    select order_item_id, valid_from, valid_to, product_id, quantity, ended_by
    from analytics.fact_order_items_history
    where order_id = %s
    order by order_item_id, change_id
"""

ORDER_COLUMNS = ("valid_from", "valid_to", "status", "delivery_date", "customer_id", "ended_by")
ITEM_COLUMNS = ("order_item_id", "valid_from", "valid_to", "product_id", "quantity", "ended_by")


@dataclass(frozen=True)
class OrderHistory:
    order_id: int
    order_versions: list[tuple]
    item_versions: list[tuple]

    def lines(self) -> list[str]:
        items = len({row[0] for row in self.item_versions})
        return [
            f"order {self.order_id}: {counted(len(self.order_versions), 'version')} "
            "(commit times, UTC; valid_to empty while current)",
            *table(ORDER_COLUMNS, self.order_versions),
            "",
            f"its items: {items}, {counted(len(self.item_versions), 'version')}",
            *table(ITEM_COLUMNS, self.item_versions),
        ]


def order_history(order_id: int) -> OrderHistory:
    with (
        connected(ANALYTICS, application_name="acme order_history") as conn,
        conn,
        conn.cursor() as cur,
    ):
        cur.execute("select to_regclass('analytics.fact_orders_history') is not null")
        if not cur.fetchone()[0]:
            raise ExportError("the history models are not built yet: run `acme pipeline run` first")
        cur.execute("set local timezone = 'UTC'")
        cur.execute(ORDER_VERSIONS, (order_id,))
        order_versions = cur.fetchall()
        cur.execute(ITEM_VERSIONS, (order_id,))
        item_versions = cur.fetchall()
    if not order_versions:
        raise ExportError(
            f"order {order_id} has no version in the history: it has not been written since "
            "capture started, or not loaded yet (`acme pipeline status` shows the lag)"
        )
    return OrderHistory(order_id, order_versions, item_versions)


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def table(columns: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """Aligned columns, one line per row."""
    cells = [list(columns)] + [[cell_text(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)
