"""What capture costs the OLTP database: pgbench TPS and server CPU per transaction (two
mixes), the trigger's cost per captured row, and bulk statement times, each with capture on
and with its triggers dropped (not disabled: a disabled trigger still makes PostgreSQL collect
its transition tables) on the same tables, interleaved."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import datasets
from bench.cluster import Cluster
from bench.measure import (
    OLTP_SCRIPT,
    ORM_SCRIPT,
    interleaved,
    median,
    oltp_pgbench,
    pgbench_environment,
    server_cpu_seconds,
    timed,
)
from bench.results import Row
from localpg import servers

TPS = re.compile(r"^tps = ([\d.]+)", re.MULTILINE)
TRANSACTIONS = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
CLIENTS = 4
LOOP_ROWS = 10_000


@dataclass(frozen=True)
class PgbenchRun:
    tps: float
    cpu_per_transaction: float  # server CPU seconds per transaction


def pgbench_run(uri: str, seconds: int, variables: dict[str, int], script: Path) -> PgbenchRun:
    data_dir = servers.FINANCE_SERVER.data_dir
    cpu_before = server_cpu_seconds(data_dir)
    result = subprocess.run(
        oltp_pgbench(uri, CLIENTS, CLIENTS, seconds, variables, script=script),
        capture_output=True,
        text=True,
        env=pgbench_environment(uri),
        check=False,
    )
    # pgbench has disconnected: its backends have ended and their CPU is counted.
    time.sleep(0.2)
    cpu = server_cpu_seconds(data_dir) - cpu_before
    tps, transactions = TPS.search(result.stdout), TRANSACTIONS.search(result.stdout)
    if result.returncode != 0 or not tps or not transactions:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip() or result.stdout}")
    return PgbenchRun(float(tps.group(1)), cpu / max(int(transactions.group(1)), 1))


MIXES = {
    "one statement per order": (OLTP_SCRIPT, 0.80),
    "one statement per row (ORM)": (ORM_SCRIPT, 0.70),
}


def oltp(cluster: Cluster, seconds: int, reps: int, progress) -> list[Row]:
    """pgbench with capture on and with its triggers dropped, interleaved; judged by TPS and
    by the server's CPU per transaction (TPS on 2 cores swings with the machine)."""
    pair = cluster.pair("oltp")
    datasets.install_source(pair)
    base_orders = 20_000
    datasets.add_reference_data(pair, base_orders)
    datasets.add_orders(pair, base_orders)
    customers, products = datasets.reference_sizes(base_orders)
    variables = {"customers": customers, "products": products, "orders": base_orders}
    rows = []
    for mix, (script, target) in MIXES.items():
        runs: dict[str, list[PgbenchRun]] = {"on": [], "off": []}

        def run(enabled: bool, script=script, mix=mix, runs=runs):
            def measure() -> float:
                datasets.set_capture(pair, enabled)
                pair.finance("checkpoint")
                outcome = pgbench_run(pair.finance_uri, seconds, variables, script)
                runs["on" if enabled else "off"].append(outcome)
                progress(
                    f"  pgbench {mix}, capture {'on' if enabled else 'off'}: "
                    f"{outcome.tps:,.0f} TPS, {outcome.cpu_per_transaction * 1e6:,.0f} µs "
                    "server CPU per transaction"
                )
                return outcome.tps

            return measure

        interleaved(reps, {"on": run(True), "off": run(False)})
        tps_on = median([r.tps for r in runs["on"]])
        tps_off = median([r.tps for r in runs["off"]])
        cpu_on = median([r.cpu_per_transaction for r in runs["on"]]) * 1e6
        cpu_off = median([r.cpu_per_transaction for r in runs["off"]]) * 1e6
        rows.append(
            Row(
                f"capture overhead, OLTP {mix}, TPS (pgbench, {CLIENTS} clients)",
                tps_on,
                "TPS",
                tps_off,
                "triggers dropped",
                tps_on / tps_off,
                f"≥ {target:.2f} (ours ÷ off)",
                tps_on / tps_off >= target,
                [r.tps for r in runs["on"]],
            )
        )
        rows.append(
            Row(
                f"capture overhead, OLTP {mix}, server CPU per transaction",
                cpu_on,
                "µs",
                cpu_off,
                "triggers dropped",
                cpu_off / cpu_on,
                f"≥ {target:.2f} (off ÷ ours)",
                cpu_off / cpu_on >= target,
                [r.cpu_per_transaction * 1e6 for r in runs["on"]],
            )
        )
    datasets.set_capture(pair, True)
    return rows


def trigger_cost_per_row(cluster: Cluster, reps: int, progress) -> Row:
    """What the capture trigger adds to one single-row INSERT: one backend inserting rows
    one statement at a time in a loop, with capture on and with its triggers dropped."""
    pair = cluster.pair("oltp", fresh=False)
    (order_id, product_id) = pair.finance(
        "select min(order_id), min(product_id) from operations.orders, operations.products",
        fetch=True,
    )[0]
    loop = (
        f"do $$ begin for i in 1..{LOOP_ROWS} loop "
        "insert into operations.order_items (order_id, product_id, quantity) "
        f"values ({order_id}, {product_id}, 1); end loop; end $$"
    )

    def run(enabled: bool):
        def measure() -> float:
            datasets.set_capture(pair, enabled)
            seconds = timed(lambda: pair.finance(loop))
            progress(
                f"  {LOOP_ROWS:,} single-row inserts, capture {'on' if enabled else 'off'}: "
                f"{seconds:.2f}s"
            )
            return seconds

        return measure

    figures = interleaved(reps, {"on": run(True), "off": run(False)})
    datasets.set_capture(pair, True)
    per_row = (median(figures["on"]) - median(figures["off"])) / LOOP_ROWS * 1e6
    return Row(
        f"capture trigger cost per captured row (one backend, {LOOP_ROWS:,} single-row inserts)",
        per_row,
        "µs",
        median(figures["off"]) / LOOP_ROWS * 1e6,
        "the insert itself, triggers dropped",
        None,
        "≤ 15 µs",
        per_row <= 15,
        [
            (on - off) / LOOP_ROWS * 1e6
            for on, off in zip(figures["on"], figures["off"], strict=True)
        ],
    )


def bulk(cluster: Cluster, rows: int, reps: int, progress) -> list[Row]:
    pair = cluster.pair("bulk")
    datasets.install_source(pair)
    datasets.add_reference_data(pair, rows)
    datasets.set_capture(pair, False)
    datasets.add_orders(pair, rows)
    (products,) = pair.finance("select max(product_id) from operations.products", fetch=True)[0]
    statements = {
        "insert": (
            f"insert into operations.order_items (order_id, product_id, quantity) "
            f"select id, 1 + id % {products}, 1 + id % 7 from generate_series(1, {rows}) as id"
        ),
        "update": (
            "update operations.orders set status = case status when 'PENDING' then "
            f"'PROCESSING' else 'PENDING' end where order_id <= {rows}"
        ),
    }

    def run(kind: str, enabled: bool):
        def measure() -> float:
            datasets.set_capture(pair, enabled)
            pair.finance("checkpoint")
            seconds = timed(lambda: pair.finance(statements[kind]))
            progress(
                f"  bulk {kind} of {rows:,}, capture {'on' if enabled else 'off'}: {seconds:.2f}s"
            )
            return seconds

        return measure

    result = []
    for kind, label, target in (
        ("insert", "INSERT … SELECT of order items", 0.70),
        ("update", "UPDATE of orders", 0.60),
    ):
        figures = interleaved(reps, {"on": run(kind, True), "off": run(kind, False)})
        with_capture, without = median(figures["on"]), median(figures["off"])
        ratio = without / with_capture
        result.append(
            Row(
                f"capture overhead, bulk {label} ({rows:,} rows)",
                with_capture,
                "s",
                without,
                "triggers dropped",
                ratio,
                f"≥ {target:.2f} (off ÷ ours)",
                ratio >= target,
                figures["on"],
            )
        )
    datasets.set_capture(pair, True)
    return result
