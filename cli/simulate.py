"""`acme simulate`: the demo application's workload."""

from __future__ import annotations

import threading

import click

from workload.simulate import WorkloadSize
from workload.simulate import simulate as run_workload


@click.command()
@click.option(
    "--orders",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="Orders to place in all.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Concurrent writer connections.",
)
@click.option(
    "--customers", type=click.IntRange(1), help="Customers to create  [default: orders/10]"
)
@click.option("--products", type=click.IntRange(1), help="Products to create  [default: orders/20]")
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1),
    help="Stop after this many seconds even if not all orders are placed.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
def simulate(orders, concurrency, customers, products, duration, seed) -> None:
    """Write a realistic workload to finance_db from several concurrent writers.

    New customers and products, orders with 1-10 items, status moves PENDING -> PROCESSING
    -> (REPROCESSING) -> COMPLETED, cancellations, deleted orders and items, and
    deactivated customers. The same --seed gives the same workload.
    """
    size = WorkloadSize(orders, concurrency, customers, products, duration, seed)
    click.echo(simulate_with_progress(size).summary())


def simulate_with_progress(size: WorkloadSize):
    lock = threading.Lock()
    with click.progressbar(
        length=size.orders, label="orders", file=click.get_text_stream("stderr")
    ) as bar:

        def placed() -> None:
            with lock:
                bar.update(1)

        return run_workload(size, on_order=placed)
