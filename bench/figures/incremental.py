"""Incremental cost and flat growth: after 10k changes, the incremental dbt run of the marts
against a full refresh of them (and the reports on them), and at a large warehouse against a
small one. Each incremental run, in turn order (bench/measure.py) with the full refresh,
first gets a fresh 10k-change round (new orders with items, status updates) written and
loaded, untimed, so every repetition applies its 10k changes. At the large warehouse the
history models' incremental run follows the marts' on the same round, and is held to it;
their full refresh (with the as-of views on them) is held to the marts', once: at 1M orders
it takes most of a minute, and the run's 15-minute budget has no room for three. The
staging and history tables' size per staged change is reported."""

from __future__ import annotations

from bench import datasets
from bench.cluster import Pair
from bench.measure import median, timed, turn_order
from bench.results import Row
from bench.warehouse import Warehouse
from pipeline.dbt_build import HISTORY_MODELS, MART_MODELS
from pipeline.moments import HISTORY_MODELS as HISTORY_MODEL_NAMES


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
    figures: dict[str, list[float]] = {"small": [], "large": [], "history": [], "full": []}

    def incremental(warehouse: Warehouse) -> float:
        # A round of its own, landed just before the run: whatever ran before it in this
        # repetition (the full refresh takes every landed change), the incremental run always
        # applies `changes` new changes.
        change_round(warehouse.pair, changes)
        landed = warehouse.load()
        seconds = timed(warehouse.incremental)
        progress(f"  {warehouse.pair.name}: {landed:,} changes applied in {seconds:.2f}s")
        if warehouse is large:
            history = timed(warehouse.history)
            figures["history"].append(history)
            progress(f"  {warehouse.pair.name}: history models in {history:.2f}s")
            assert applied_through(warehouse.pair) == newest_load(warehouse.pair), "not applied"
        return seconds

    def full_refresh() -> float:
        return timed(lambda: large.full_refresh_of(MART_MODELS))

    runs = {
        "small": lambda: incremental(small),
        "large": lambda: incremental(large),
        "full": full_refresh,
    }
    for rep in range(reps):
        for name in turn_order(rep, list(runs)):
            seconds = runs[name]()
            figures[name].append(seconds)
            if name == "full":
                progress(f"  full refresh of the marts: {seconds:.2f}s")
    history_full = timed(lambda: large.full_refresh_of(HISTORY_MODELS))
    progress(f"  full refresh of the history models: {history_full:.2f}s")
    small_s, large_s, full_s, history_s = (
        median(figures[name]) for name in ("small", "large", "full", "history")
    )
    large_orders = orders_of(large.pair)
    small_orders = orders_of(small.pair)
    bytes_per_change = staged_bytes_per_change(large.pair)
    return [
        Row(
            f"incremental cost: dbt run after {changes:,} changes at {large_orders:,} orders",
            large_s,
            "s",
            full_s,
            "full refresh of the marts",
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
        Row(
            f"history incremental: dbt run of the history models after {changes:,} changes at "
            f"{large_orders:,} orders",
            history_s,
            "s",
            large_s,
            "the marts' incremental run on the same round",
            history_s / large_s,
            "≤ 1.5 (history ÷ marts)",
            history_s / large_s <= 1.5,
            figures["history"],
        ),
        Row(
            f"history full refresh at {large_orders:,} orders (with the as-of views on it)",
            history_full,
            "s",
            full_s,
            "full refresh of the marts (with the reports on them)",
            history_full / full_s,
            "≤ 2.0 (history ÷ marts)",
            history_full / full_s <= 2.0,
            [history_full],
            note="one repetition (the run's budget has no room for three)",
        ),
        Row(
            "staging and history bytes per staged change (tables, indexes and TOAST)",
            bytes_per_change["staging"] + bytes_per_change["history"],
            "B",
            None,
            "",
            None,
            "reported",
            None,
            note=(
                f"staging.change_log {bytes_per_change['staging']:,.0f} B, the history models "
                f"(the four and the pending-items history) {bytes_per_change['history']:,.0f} B "
                "a change"
            ),
        ),
    ]


def staged_bytes_per_change(pair: Pair) -> dict[str, float]:
    staging, history, changes = pair.analytics(
        """
        select
            pg_total_relation_size('staging.change_log'),
            (
                select sum(pg_total_relation_size(format('analytics.%%I', name)))::bigint
                from unnest(%s::text[]) as name
            ),
            (select count(*) from staging.change_log)
        """,
        (list(HISTORY_MODEL_NAMES),),
        fetch=True,
    )[0]
    return {"staging": staging / changes, "history": history / changes}


def orders_of(pair: Pair) -> int:
    (rows,) = pair.analytics("select count(*) from analytics.fact_orders", fetch=True)[0]
    return rows


def newest_load(pair: Pair) -> int:
    return pair.analytics("select max(load_id) from staging.load_batches", fetch=True)[0][0]


def applied_through(pair: Pair) -> int:
    """The load every incremental mart has applied through (the least of them)."""
    rows = pair.analytics("select min(through_load_id) from staging.applied_loads", fetch=True)
    return rows[0][0]
