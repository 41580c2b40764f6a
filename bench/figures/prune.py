"""Prune: dropping the change log's landed segments (loader/prune.py).

On the large pair, whose log holds every change of its million orders, landed: one prune
with no retention drops it, timed as `acme capture prune` runs it. Then CYCLES rounds of
write, load and prune, the log's on-disk size read after each load, before its prune: with
whole segments dropped it stays one round's size, where DELETE left dead rows for vacuum.
The baseline of the drop is the same prune on one round's segment: a drop reads no rows, so
what the larger one pays more is unlinking its files."""

from __future__ import annotations

from bench import datasets
from bench.measure import median, timed
from bench.results import Row
from bench.warehouse import Warehouse
from loader.prune import prune

CYCLES = 10

LOG_BYTES = """
select coalesce(sum(pg_total_relation_size(relid)), 0)
from pg_partition_tree('cdc.change_log')
where isleaf
"""


def run(warehouse: Warehouse, cycle_changes: int, progress) -> list[Row]:
    pair = warehouse.pair
    warehouse.load()
    (backlog,) = pair.analytics("select count(*) from staging.change_log", fetch=True)[0]
    with pair.active():
        big = timed(lambda: prune(0))
    (left,) = pair.finance("select count(*) from cdc.change_log", fetch=True)[0]
    assert left == 0, f"{left:,} changes left after pruning a landed log"
    progress(f"  pruned a landed log of {backlog:,} changes in {big:.2f}s")

    orders = max(1, cycle_changes // (1 + datasets.ITEMS_PER_ORDER))
    sizes, small = [], []
    for _cycle in range(CYCLES):
        datasets.add_orders(pair, orders)
        warehouse.load()
        sizes.append(int(pair.finance(LOG_BYTES, fetch=True)[0][0]) / 2**20)
        with pair.active():
            small.append(timed(lambda: prune(0)))
    progress(
        f"  {CYCLES} cycles: log {sizes[0]:.1f} MB → {sizes[-1]:.1f} MB, prune {median(small):.3f}s"
    )
    changes = orders * (1 + datasets.ITEMS_PER_ORDER)
    return [
        Row(
            f"prune: drop a landed change log of {backlog:,} changes",
            big,
            "s",
            median(small),
            f"prune of one round's {changes:,} changes",
            big / median(small),
            "≤ 1 s (at 5M changes)",
            big <= 1.0,
            [big],
            "one repetition: the drop leaves nothing to drop again",
        ),
        Row(
            f"prune: change log size after {CYCLES} write/load/prune cycles of {changes:,} changes",
            sizes[-1],
            "MB",
            sizes[0],
            "after the first cycle",
            sizes[-1] / sizes[0],
            "≤ 1.5 (flat)",
            sizes[-1] / sizes[0] <= 1.5,
            sizes,
        ),
    ]
