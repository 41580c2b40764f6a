"""Incremental cost and flat growth: after 10k changes, the incremental dbt run of the marts
against a full refresh of the same warehouse, and at a large warehouse against a small one.
Each repetition writes a fresh 10k-change round (new orders with items, status updates) to
both sizes and loads it, untimed; then times the dbt runs in turn order (bench/measure.py)."""

from __future__ import annotations

from bench import datasets
from bench.cluster import Pair
from bench.measure import median, timed, turn_order
from bench.results import Row
from bench.warehouse import Warehouse


def change_round(pair: Pair, changes: int) -> None:
    """About `changes` changes: new orders (an order and its items each) for 60% of them,
    status updates of existing open orders for the rest."""
    new_orders = max(1, int(changes * 0.6) // (1 + datasets.ITEMS_PER_ORDER))
    updates = changes - new_orders * (1 + datasets.ITEMS_PER_ORDER)
    datasets.add_orders(pair, new_orders)
    pair.finance(
        """
        update operations.orders set status = case status
            when 'PENDING' then 'PROCESSING' when 'PROCESSING' then 'REPROCESSING'
            else 'COMPLETED' end
        where order_id in (
            select order_id from operations.orders
            where status in ('PENDING', 'PROCESSING', 'REPROCESSING')
            order by random() limit %s
        )
        """,
        (updates,),
    )


def run(small: Warehouse, large: Warehouse, changes: int, reps: int, progress) -> list[Row]:
    figures: dict[str, list[float]] = {"small": [], "large": [], "full": []}
    for rep in range(reps):
        for warehouse in (small, large):
            change_round(warehouse.pair, changes)
            landed = warehouse.load()
            progress(f"  {warehouse.pair.name}: {landed:,} changes landed")
        runs = {
            "small": small.incremental,
            "large": large.incremental,
            "full": large.full_refresh,
        }
        for name in turn_order(rep, list(runs)):
            seconds = timed(runs[name])
            figures[name].append(seconds)
            progress(f"  {name}: {seconds:.2f}s")
    small_s, large_s, full_s = (median(figures[name]) for name in ("small", "large", "full"))
    large_orders = orders_of(large.pair)
    small_orders = orders_of(small.pair)
    return [
        Row(
            f"incremental cost: dbt run after {changes:,} changes at {large_orders:,} orders",
            large_s,
            "s",
            full_s,
            "full refresh",
            large_s / full_s,
            "≤ 0.1 (ours ÷ full)",
            large_s / full_s <= 0.1,
            figures["large"],
        ),
        Row(
            f"flat growth: incremental at {large_orders:,} ÷ at {small_orders:,} orders",
            large_s,
            "s",
            small_s,
            f"incremental at {small_orders:,} orders",
            large_s / small_s,
            "≤ 1.5",
            large_s / small_s <= 1.5,
            figures["small"],
        ),
    ]


def orders_of(pair: Pair) -> int:
    (rows,) = pair.analytics("select count(*) from analytics.fact_orders", fetch=True)[0]
    return rows
