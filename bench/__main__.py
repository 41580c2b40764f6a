"""`python -m bench [--quick] [--only NAME ...]`: the benchmark suite (bench/README.md).

Starts its own two servers, runs every figure against its baseline in the same run, prints
the results table and writes it to bench/results/latest.md and latest.json."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from bench import datasets, results
from bench.cluster import bench_cluster
from bench.figures import (
    capture_overhead,
    catch_up,
    exports,
    freshness,
    incremental,
    prune,
)
from bench.measure import median, python_module, run_child
from bench.results import Row
from bench.warehouse import Warehouse

FIGURES = ("capture", "load", "catchup", "incremental", "exports", "prune", "freshness")


@dataclass(frozen=True)
class Size:
    name: str
    oltp_seconds: int
    bulk_rows: int
    burst: int
    large_orders: int
    small_orders: int
    change_round: int
    tps: int
    window: float
    warm_up: float
    reps: int = 3


FULL = Size("full", 6, 200_000, 1_000_000, 1_000_000, 100_000, 10_000, 500, 8, 3)
# One repetition: the quick size only keeps the figures working (make test runs it).
QUICK = Size("quick", 1, 2_000, 5_000, 5_000, 1_000, 500, 50, 2, 2, reps=1)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to keep it working")
    parser.add_argument("--only", nargs="+", choices=FIGURES, help="run only these figures")
    options = parser.parse_args()
    size = QUICK if options.quick else FULL
    chosen = options.only or FIGURES
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {message}", flush=True)

    rows: list[Row] = []
    with bench_cluster(lambda _message: None) as cluster:
        version = cluster.server_version()
        progress(f"servers up (PostgreSQL {version}); size {size.name}")
        if "capture" in chosen:
            progress("capture overhead, OLTP")
            rows += capture_overhead.oltp(cluster, size.oltp_seconds, size.reps, progress)
            progress("capture trigger cost per row")
            rows.append(capture_overhead.trigger_cost_per_row(cluster, size.reps, progress))
            progress("capture overhead, bulk")
            rows += capture_overhead.bulk(cluster, size.bulk_rows, size.reps, progress)
        loader_peak = backlog = None
        if "load" in chosen or "catchup" in chosen:
            progress(f"load throughput and catch-up, {size.burst:,}-change bursts")
            bursts = catch_up.run(cluster, size.burst, size.reps, progress)
            rows += [row for row in bursts.rows() if figure_of(row) in chosen]
            loader_peak, backlog = max(bursts.loader_peaks), median(bursts.sizes)
            cluster.drop_pair("catchup", "replica_catchup")
        export_peak = open_rows = None
        if any(figure in chosen for figure in ("incremental", "exports", "prune", "freshness")):
            large = build_warehouse(cluster, "large", size.large_orders, progress)
            if "incremental" in chosen:
                small = build_warehouse(cluster, "small", size.small_orders, progress)
                progress(f"incremental cost and flat growth, {size.change_round:,} changes")
                rows += incremental.run(small, large, size.change_round, size.reps, progress)
                cluster.drop_pair("small")
            if "exports" in chosen:
                progress("exports")
                directory = cluster.home / "exports"
                directory.mkdir(exist_ok=True)
                export_rows, export_peak, open_rows = exports.run(
                    large.pair, directory, size.reps, progress
                )
                rows += export_rows
            if "prune" in chosen:
                progress("prune")
                rows += prune.run(large, size.change_round, progress)
            if "freshness" in chosen:
                progress(f"freshness under {size.tps} TPS at {size.large_orders:,} orders")
                rows += freshness.run(
                    cluster,
                    large.pair,
                    size.large_orders,
                    size.tps,
                    size.window,
                    size.warm_up,
                    size.reps,
                    progress,
                )
            cluster.drop_pair("large", "replica_fresh")
        if loader_peak is not None or export_peak is not None:
            rows += memory_rows(loader_peak, backlog, export_peak, open_rows)
    if options.quick:
        # Too small to judge: the quick size only keeps the suite working.
        for row in rows:
            row.met = None
    context = results.machine_context(size.name, version, time.monotonic() - started)
    path = results.write(rows, context, "quick" if options.quick else "latest")
    print()
    print(results.markdown(rows, context))
    print(f"written to {path} and {path.with_suffix('.json')}")
    return 0


def figure_of(row: Row) -> str:
    """The --only name of a row of the bursts figure."""
    return "load" if row.figure.startswith("load") else "catchup"


def build_warehouse(cluster, name: str, orders: int, progress) -> Warehouse:
    pair = cluster.pair(name)
    datasets.install_source(pair)
    datasets.add_reference_data(pair, orders)
    datasets.add_orders(pair, orders, progress=progress)
    warehouse = Warehouse(pair)
    landed = warehouse.load()
    progress(f"{name}: {landed:,} changes landed; building the warehouse")
    warehouse.build_all()
    return warehouse


def memory_rows(loader_peak, backlog, export_peak, open_rows) -> list[Row]:
    """Peak RSS against the floor: a process that imports the same code and does nothing."""
    floor = run_child(python_module("bench.idle"), memory=True).max_rss_mb
    rows = []
    if loader_peak is not None:
        rows.append(
            Row(
                f"memory: loader peak RSS, {backlog:,.0f}-change backlog",
                loader_peak,
                "MB",
                floor,
                "the same imports, idle",
                loader_peak / floor,
                "≤ 150 MB",
                loader_peak <= 150,
            )
        )
    if export_peak is not None:
        rows.append(
            Row(
                f"memory: open_orders export peak RSS, {open_rows:,} rows",
                export_peak,
                "MB",
                floor,
                "the same imports, idle",
                export_peak / floor,
                "≤ 150 MB",
                export_peak <= 150,
            )
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
