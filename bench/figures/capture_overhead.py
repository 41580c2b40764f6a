"""What capture costs the OLTP database: pgbench TPS and bulk statement times, with the
capture triggers enabled and disabled on the same tables, interleaved."""

from __future__ import annotations

import re
import subprocess

from bench import datasets
from bench.cluster import Cluster
from bench.measure import interleaved, median, oltp_pgbench, pgbench_environment, timed
from bench.results import Row

TPS = re.compile(r"^tps = ([\d.]+)", re.MULTILINE)


def pgbench_tps(uri: str, clients: int, seconds: int, variables: dict[str, int]) -> float:
    result = subprocess.run(
        oltp_pgbench(uri, clients, clients, seconds, variables),
        capture_output=True,
        text=True,
        env=pgbench_environment(uri),
        check=False,
    )
    match = TPS.search(result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip() or result.stdout}")
    return float(match.group(1))


def oltp(cluster: Cluster, seconds: int, reps: int, progress) -> Row:
    pair = cluster.pair("oltp")
    datasets.install_source(pair)
    base_orders = 20_000
    datasets.add_reference_data(pair, base_orders)
    datasets.add_orders(pair, base_orders)
    customers, products = datasets.reference_sizes(base_orders)
    variables = {"customers": customers, "products": products, "orders": base_orders}

    def run(enabled: bool):
        def measure() -> float:
            datasets.set_capture(pair, enabled)
            pair.finance("checkpoint")
            tps = pgbench_tps(pair.finance_uri, 4, seconds, variables)
            progress(f"  pgbench, capture {'on' if enabled else 'off'}: {tps:,.0f} TPS")
            return tps

        return measure

    figures = interleaved(reps, {"on": run(True), "off": run(False)})
    datasets.set_capture(pair, True)
    with_capture, without = median(figures["on"]), median(figures["off"])
    ratio = with_capture / without
    return Row(
        "capture overhead, OLTP (pgbench, 4 clients)",
        with_capture,
        "TPS",
        without,
        "capture off",
        ratio,
        "≥ 0.85 (ours ÷ off)",
        ratio >= 0.85,
        figures["on"],
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
    for kind, label in (
        ("insert", "INSERT … SELECT of order items"),
        ("update", "UPDATE of orders"),
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
                "capture off",
                ratio,
                "≥ 0.5 (off ÷ ours)",
                ratio >= 0.5,
                figures["on"],
            )
        )
    datasets.set_capture(pair, True)
    return result
