"""`python -m bench.load_split [--quick]`: where the loader's time goes on a backlog, beside
the raw COPY that `make bench` compares it with.

Not part of `make bench`: it explains the load-throughput figure (bench/shortfalls.py).
For each burst of about 860k changes (new orders with their items), in turn:
- the source side alone: the loader's page query, as one COPY in its index order, to nothing;
- raw COPY between the servers (the load-throughput baseline);
- the loader itself, in this process: its paged COPYs (until its last page's progress
  report) and what follows them (the ANALYZE of the grown staging table, closing).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from contextlib import closing

import psycopg2

from bench import datasets
from bench.cluster import bench_cluster
from bench.figures import load_throughput
from bench.figures.catch_up import burst_orders
from bench.measure import median, psql, timed
from bench.warehouse import Warehouse
from loader.copy_changes import PAGE_SELECT, load_changes
from loader.watermark import not_landed_parameters


def source_read(pair, after: int) -> float:
    """The page query over the whole burst (no limit), in index order, to /dev/null."""
    parameters = not_landed_parameters(None, load_id=1, horizon=2**62, limit=None)
    parameters["change_id_floor"] = after + 1
    with closing(psycopg2.connect(pair.finance_uri)) as conn, conn.cursor() as cur:
        query = cur.mogrify(PAGE_SELECT, parameters).decode()
    command = psql(
        pair.finance_uri, "-c", "set enable_sort = off", "-c", f"copy ({query}) to stdout"
    )
    return timed(lambda: subprocess.run(command, stdout=subprocess.DEVNULL, check=True))


def loader(pair) -> tuple[int, float, float]:
    """(changes, seconds until the last page landed, seconds after it)."""
    last_page = []
    started = time.monotonic()
    with pair.active():
        result = load_changes(progress=lambda _result: last_page.append(time.monotonic()))
    ended = time.monotonic()
    return result.changes, last_page[-1] - started, ended - last_page[-1]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_split", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one small burst")
    options = parser.parse_args()
    changes, reps = (5_000, 1) if options.quick else (1_000_000, 2)
    figures: dict[str, list[float]] = {}
    with bench_cluster(lambda _message: None) as cluster:
        pair = cluster.pair("load_split")
        datasets.install_source(pair)
        datasets.add_reference_data(pair, 10_000)
        datasets.add_orders(pair, 10_000)
        Warehouse(pair).load()
        load_throughput.prepare_raw_table(pair)
        for rep in range(reps):
            (before,) = pair.finance("select max(change_id) from cdc.change_log", fetch=True)[0]
            datasets.add_orders(pair, burst_orders(changes))
            pair.finance("analyze cdc.change_log")
            read = source_read(pair, before)
            raw = load_throughput.raw_copy(pair, before)
            landed, pages, after_pages = loader(pair)
            for name, seconds in (
                ("source read, index order", read),
                ("raw COPY between the servers", raw),
                ("loader: its paged COPYs", pages),
                ("loader: after the last page (ANALYZE, closing)", after_pages),
                ("loader: in all", pages + after_pages),
            ):
                figures.setdefault(name, []).append(seconds)
            print(f"burst {rep + 1}: {landed:,} changes", flush=True)
    print()
    print(f"| step ({landed:,} changes) | seconds (median of {reps}) | changes/s |")
    print("| --- | --- | --- |")
    for name, values in figures.items():
        seconds = median(values)
        print(f"| {name} | {seconds:.2f} | {landed / seconds:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
