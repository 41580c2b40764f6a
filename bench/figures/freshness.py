"""Freshness under a steady OLTP load, on the large (1M-order) warehouse:
`acme pipeline run --follow` (defaults) runs while pgbench writes orders at a fixed rate;
marker orders committed every MARKER_EVERY seconds are timed from their commit until they
show in reports.open_orders. The windows hold no data-test cycle: at 1M orders one takes
minutes (tried with --test-interval 4: markers waited past a minute and the run gave up), so
its cost is its own figure, the first --follow cycle (a full dbt build, every model and data
test), timed until that cycle's line is printed. The baseline is
PostgreSQL's logical replication of the same workload into a replica database: from commit
until the marker is in the replica. The two run in alternating windows (the other consumer
paused: the --follow process stopped with SIGSTOP, the subscription disabled), after a
warm-up that lets the resumed one catch up. pgbench's achieved rate is read from its
per-second progress and printed beside the target."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

import psycopg2

from bench import datasets
from bench.cluster import Cluster, Pair, run_sql
from bench.figures.catch_up import subscribe, unsubscribe, wait_until
from bench.measure import median, oltp_pgbench, pgbench_environment, python_module, turn_order
from bench.results import Row
from connections.settings import PROJECT_ROOT

MARKER_EVERY = 0.1
POLL_EVERY = 0.02
CYCLE_LINE = re.compile(r" loaded \d+ changes in ")
CYCLE_TIMES = re.compile(
    r" loaded \d+ changes in \d+ batches \(([\d.]+)s.*; dbt \w+ \d+ nodes in ([\d.]+)s"
)
PROGRESS = re.compile(r"^progress: [\d.]+ s, ([\d.]+) tps", re.MULTILINE)
LIMITS = {"p50": 1.0, "p95": 2.0}


def run(
    cluster: Cluster,
    pair: Pair,
    orders: int,
    tps: int,
    window: float,
    warm_up: float,
    reps: int,
    progress,
) -> list[Row]:
    """pair: a loaded and built warehouse of `orders` orders (bench/__main__.py)."""
    replica_uri = cluster.server_uri(cluster.analytics_uri, "replica_fresh")
    # The markers are new orders, so the replica needs no copy of the existing rows.
    subscribe(pair, replica_uri, copy_data=False)
    follow_log = cluster.home / "freshness-follow.log"
    with open(follow_log, "w") as output:
        follower = subprocess.Popen(
            python_module("cli", "pipeline", "run", "--follow"),
            cwd=PROJECT_ROOT,
            env={**os.environ, **pair.environment()},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    workload = None
    pgbench_log = cluster.home / "freshness-pgbench.log"
    try:
        started = time.monotonic()
        wait_until(
            lambda: CYCLE_LINE.search(follow_log.read_text()) is not None,
            "the first --follow cycle",
            timeout=1800,
        )
        first_cycle = time.monotonic() - started
        progress(f"  first --follow cycle (full build and data tests): {first_cycle:.1f}s")
        customers, products = datasets.reference_sizes(orders)
        total = reps * 2 * (window + warm_up + 10) + 60
        workload = start_pgbench(
            pair.finance_uri, tps, total, customers, products, orders, pgbench_log
        )
        seen = {
            "ours": (pair.analytics_uri, "reports.open_orders"),
            "native": (replica_uri, "operations.orders"),
        }
        latencies: dict[str, list[float]] = {"ours": [], "native": []}
        p50s: dict[str, list[float]] = {"ours": [], "native": []}
        p95s: dict[str, list[float]] = {"ours": [], "native": []}
        for rep in range(reps):
            for name in turn_order(rep, ["ours", "native"]):
                if name == "ours":
                    follower.send_signal(signal.SIGCONT)
                else:
                    run_sql(replica_uri, "alter subscription acme_bench enable")
                time.sleep(warm_up)
                uri, relation = seen[name]
                query = f"select order_id from {relation} where order_id = any(%s)"
                window_latencies = measure_window(pair.finance_uri, uri, query, window)
                if name == "ours":
                    follower.send_signal(signal.SIGSTOP)
                else:
                    run_sql(replica_uri, "alter subscription acme_bench disable")
                latencies[name] += window_latencies
                p50 = percentile(window_latencies, 50)
                p95 = percentile(window_latencies, 95)
                p50s[name].append(p50)
                p95s[name].append(p95)
                progress(
                    f"  {name}: {len(window_latencies)} markers, p50 {p50:.2f}s, p95 {p95:.2f}s"
                )
    finally:
        follower.send_signal(signal.SIGCONT)
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=120)
        if workload:
            workload.terminate()
            workload.wait()
        unsubscribe(replica_uri)
    achieved = achieved_tps(pgbench_log)
    progress(f"  pgbench achieved {achieved:,.0f} TPS of the {tps} TPS asked for")
    cycles = cycle_times(follow_log)
    rows = [
        Row(
            f"first --follow cycle at {orders:,} orders: a full dbt build, every model and "
            "data test (what a --test-interval cycle costs)",
            first_cycle,
            "s",
            None,
            "",
            None,
            "reported",
            None,
        )
    ]
    for label, figures in (("p50", p50s), ("p95", p95s)):
        ours, native = median(figures["ours"]), median(figures["native"])
        limit = LIMITS[label]
        rows.append(
            Row(
                f"freshness {label}, commit → report, --follow at {orders:,} orders under "
                f"{tps} TPS (achieved {achieved:,.0f}), {len(latencies['ours'])} markers",
                ours,
                "s",
                native,
                "native logical replication",
                ours / native,
                f"≤ {limit:g} s",
                ours <= limit,
                figures["ours"],
                note=cycles,
            )
        )
    return rows


def cycle_times(follow_log: Path) -> str:
    """What the --follow cycles after the first (the full build) spent loading and building:
    a marker waits for the cycle running when it commits to end, then for a whole one."""
    times = [tuple(map(float, m)) for m in CYCLE_TIMES.findall(follow_log.read_text())][1:]
    if not times:
        return "no --follow cycle after the first"
    loads, builds = zip(*times, strict=True)
    return (
        f"{len(times)} --follow cycles after the first, medians: load {median(loads):.2f} s, "
        f"dbt run {median(builds):.2f} s"
    )


def start_pgbench(uri, tps, seconds, customers, products, orders, log: Path) -> subprocess.Popen:
    """pgbench at `tps`, printing its achieved rate every second into log."""
    variables = {"customers": customers, "products": products, "orders": orders}
    args = oltp_pgbench(uri, 4, 2, seconds, variables, "-R", str(tps), "--progress", "1")
    with open(log, "w") as progress_log:
        return subprocess.Popen(
            args,
            env={**os.environ, **pgbench_environment(uri)},
            stdout=subprocess.DEVNULL,
            stderr=progress_log,
        )


def achieved_tps(log: Path) -> float:
    """The mean of pgbench's per-second rates; 0 when it printed none."""
    rates = [float(rate) for rate in PROGRESS.findall(log.read_text())]
    return statistics.mean(rates) if rates else 0.0


def measure_window(source_uri: str, target_uri: str, query: str, window: float) -> list[float]:
    """Commits a marker order every MARKER_EVERY seconds for `window` seconds, and polls the
    target until each is visible; returns each marker's commit-to-visible seconds."""
    committed: dict[int, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def write_markers() -> None:
        conn = psycopg2.connect(source_uri)
        try:
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                with conn, conn.cursor() as cur:
                    cur.execute(
                        "insert into operations.orders (customer_id, order_date, delivery_date, "
                        "status) values (1, now(), now() + interval '1 day', 'PENDING') "
                        "returning order_id"
                    )
                    (order_id,) = cur.fetchone()
                with lock:
                    committed[order_id] = time.monotonic()  # after COMMIT returned
                time.sleep(MARKER_EVERY)
        finally:
            conn.close()
            done.set()

    writer = threading.Thread(target=write_markers, daemon=True)
    writer.start()
    conn = psycopg2.connect(target_uri)
    conn.autocommit = True
    give_up = time.monotonic() + window + 60
    try:
        with conn.cursor() as cur:
            while time.monotonic() < give_up:
                with lock:
                    pending = list(committed)
                if done.is_set() and not pending:
                    break
                if pending:
                    cur.execute(query, (pending,))
                    now = time.monotonic()
                    with lock:
                        for (order_id,) in cur.fetchall():
                            latencies.append(now - committed.pop(order_id))
                time.sleep(POLL_EVERY)
    finally:
        conn.close()
    writer.join()
    if committed:
        raise TimeoutError(f"{len(committed)} markers never became visible")
    return latencies


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
