"""Incremental cost and flat growth: after 10k changes, the incremental dbt run of the marts
against a full refresh of the same warehouse, and at a large warehouse against a small one.
Each incremental run, in turn order (bench/measure.py) with the full refresh, first gets a
fresh 10k-change round (new orders with items, status updates) written and loaded, untimed,
so every repetition applies its 10k changes."""

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

    def incremental(warehouse: Warehouse) -> float:
        # A round of its own, landed just before the run: whatever ran before it in this
        # repetition (the full refresh takes every landed change), the incremental run always
        # applies `changes` new changes.
        change_round(warehouse.pair, changes)
        landed = warehouse.load()
        seconds = timed(warehouse.incremental)
        assert applied_through(warehouse.pair) == newest_load(warehouse.pair), "not applied"
        progress(f"  {warehouse.pair.name}: {landed:,} changes applied in {seconds:.2f}s")
        return seconds

    runs = {
        "small": lambda: incremental(small),
        "large": lambda: incremental(large),
        "full": lambda: timed(large.full_refresh),
    }
    for rep in range(reps):
        for name in turn_order(rep, list(runs)):
            seconds = runs[name]()
            figures[name].append(seconds)
            if name == "full":
                progress(f"  full refresh: {seconds:.2f}s")
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


def newest_load(pair: Pair) -> int:
    return pair.analytics("select max(load_id) from staging.load_batches", fetch=True)[0][0]


def applied_through(pair: Pair) -> int:
    """The load every incremental mart has applied through (the least of them)."""
    rows = pair.analytics("select min(through_load_id) from staging.applied_loads", fetch=True)
    return rows[0][0]
