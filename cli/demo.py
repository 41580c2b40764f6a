"""`acme demo`: the whole platform end to end, as `make demo` runs it."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import click

from cli.simulate import simulate_with_progress
from connections.settings import state_dir
from exporter.csv_export import export_report
from loader import capture as capture_service
from localpg import servers
from pipeline.cycle import run_cycle
from workload.schema import create_source_schema
from workload.simulate import WorkloadSize

DEMO_EXPORTS = (
    ("open_orders", None),
    ("top_delivery_dates", 3),
    ("pending_items", None),
    ("top_customers", 3),
    ("order_lifecycle", None),
)
PREVIEW_ROWS = 3


@click.command()
@click.option(
    "--orders",
    type=click.IntRange(1),
    default=3000,
    show_default=True,
    envvar="ACME_DEMO_ORDERS",
    help="Orders the workload places.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    envvar="ACME_DEMO_CONCURRENCY",
    help="Concurrent writers.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Workload seed.")
def demo(orders: int, concurrency: int, seed: int) -> None:
    """Start the local servers, capture, simulate, load, build and export the four CSVs.

    The servers stay up afterwards; `acme local down` (or `make down`) stops them.
    """
    started = time.monotonic()
    step("starting local servers")
    servers.up(progress=click.echo)
    step("creating the operations schema")
    create_source_schema()
    step("installing change capture")
    for result in capture_service.install():
        click.echo(result.describe())
    size = WorkloadSize(orders, concurrency, seed=seed)
    earlier = earlier_demo()
    if earlier is None:
        step(f"simulating {orders} orders from {concurrency} writers")
        click.echo(simulate_with_progress(size).summary())
        record_demo(size)
    else:
        step("keeping the demo data of an earlier run")
        click.echo(
            f"finance_db already holds the demo's workload ({earlier}); it is not written "
            "again, so the reports come out as before. To start afresh: `make clean` (stops "
            "the local servers and deletes their data and the exports), then `make demo`."
        )
    step("loading changes and building the warehouse")
    cycle = run_cycle()
    click.echo(cycle.describe())
    step("exporting the reports")
    for name, limit in DEMO_EXPORTS:
        exported = export_report(name, f"{name}.csv", limit)
        click.echo(f"{name}: {exported.rows} rows in {exported.path}")
        with open(exported.path, newline="") as handle:
            for row in list(csv.reader(handle))[: PREVIEW_ROWS + 1]:
                click.echo("    " + ",".join(row))
    click.echo(
        f"\ndemo finished in {time.monotonic() - started:.1f}s; loaded "
        f"{cycle.load.changes} changes at {cycle.load.changes_per_second:,.0f} changes/s. "
        "The servers are still up: try `acme pipeline status`; `make down` stops them."
    )


def demo_marker() -> Path:
    """Written once the demo's workload is in the local finance_db."""
    return state_dir() / "demo.json"


def earlier_demo() -> str | None:
    """What an earlier demo wrote into these local servers, or None."""
    try:
        recorded = json.loads(demo_marker().read_text())
    except (FileNotFoundError, ValueError):
        return None
    return (
        f"{recorded['orders']} orders from {recorded['concurrency']} writers, "
        f"seed {recorded['seed']}"
    )


def record_demo(size: WorkloadSize) -> None:
    demo_marker().write_text(
        json.dumps({"orders": size.orders, "concurrency": size.concurrency, "seed": size.seed})
    )


def step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)
