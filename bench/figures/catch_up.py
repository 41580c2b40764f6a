"""Catch-up after a burst: the consumers paused while the source takes a burst of changes,
then the time until the warehouse's current-state tables match the source. Ours is the load
and the incremental dbt run of a --follow cycle; the baseline is PostgreSQL's own logical
replication (a publication on finance_db, a subscription in a replica database on the
analytics server) catching up on the very same burst. Both are checked against the source
after each catch-up, outside the timing."""

from __future__ import annotations

import time

import psycopg2

from bench import datasets
from bench.cluster import Cluster, create_database, run_sql
from bench.measure import median, timed
from bench.results import Row
from bench.warehouse import Warehouse
from connections.settings import PROJECT_ROOT
from reconcile.verify import table_columns, table_fingerprint, verify

TABLES = ("customers", "products", "orders", "order_items")
POLL_SECONDS = 0.02


def burst_orders(changes: int) -> int:
    """Orders whose insert (an order and its items) and one status update make `changes`."""
    return max(1, changes // (2 + datasets.ITEMS_PER_ORDER))


def run(cluster: Cluster, changes: int, reps: int, progress) -> Row:
    pair = cluster.pair("catchup")
    datasets.install_source(pair)
    datasets.add_reference_data(pair, 10_000)
    datasets.add_orders(pair, 10_000)
    warehouse = Warehouse(pair)
    warehouse.load()
    warehouse.build_all()
    replica_uri = cluster.server_uri(cluster.analytics_uri, "replica_catchup")
    subscribe(pair, replica_uri)
    burst_sizes: list[int] = []
    figures: dict[str, list[float]] = {"ours": [], "native": []}

    def ours(marker: str) -> float:
        seconds = timed(lambda: (warehouse.load(), warehouse.incremental()))
        progress(f"  ours: caught up in {seconds:.2f}s")
        return seconds

    def native(marker: str) -> float:
        seconds = timed(lambda: replicate(replica_uri, marker))
        progress(f"  native logical replication: caught up in {seconds:.2f}s")
        return seconds

    # One burst per repetition feeds both consumers; which catches up first alternates.
    for rep in range(reps):
        run_sql(replica_uri, "alter subscription acme_bench disable")
        (before,) = pair.finance("select count(*) from cdc.change_log", fetch=True)[0]
        (first,) = pair.finance("select max(order_id) from operations.orders", fetch=True)[0]
        datasets.add_orders(pair, burst_orders(changes))
        pair.finance(
            "update operations.orders set status = 'PROCESSING' where order_id > %s", (first,)
        )
        # Applied in commit order, so once the marker is there the whole burst is.
        marker = f"burst {rep}"
        pair.finance(
            "update operations.customers set customer_name = %s where customer_id = 1", (marker,)
        )
        (after,) = pair.finance("select count(*) from cdc.change_log", fetch=True)[0]
        burst_sizes.append(after - before)
        progress(f"  burst of {after - before:,} changes")
        runs = {"ours": ours, "native": native}
        for name in runs if rep % 2 == 0 else reversed(list(runs)):
            figures[name].append(runs[name](marker))
    # Both caught up with the source, checked row by row once, after the last burst (a check
    # after every burst cost 40 s of the run's 15-minute budget).
    with pair.active():
        outcome = verify()
    assert outcome.ok, f"warehouse does not match the source after catch-up: {outcome}"
    assert replica_matches(pair, replica_uri), "replica does not match the source"
    unsubscribe(replica_uri)
    ours_s, native_s = median(figures["ours"]), median(figures["native"])
    ratio = ours_s / native_s
    size = median(burst_sizes)
    return Row(
        f"catch-up after a {size:,.0f}-change burst",
        ours_s,
        "s",
        native_s,
        "native logical replication",
        ratio,
        "≤ 1.0 (ours ÷ native)",
        ratio <= 1.0,
        figures["ours"],
    )


def subscribe(pair, replica_uri: str) -> None:
    create_database(replica_uri, fresh=True)
    schema = (PROJECT_ROOT / "sql" / "schema" / "operations.sql").read_text()
    run_sql(replica_uri, schema)
    pair.finance(
        "create publication acme_bench for table "
        + ", ".join(f"operations.{table}" for table in TABLES)
    )
    conn = psycopg2.connect(replica_uri)
    conn.autocommit = True  # create subscription cannot run in a transaction block
    try:
        with conn.cursor() as cur:
            cur.execute(
                "create subscription acme_bench connection %s publication acme_bench",
                (pair.finance_uri,),
            )
    finally:
        conn.close()
    wait_until(
        lambda: run_sql(
            replica_uri,
            "select count(*) = 0 from pg_subscription_rel where srsubstate <> 'r'",
            fetch=True,
        )[0][0],
        "the subscription's initial copy",
    )


def unsubscribe(replica_uri: str) -> None:
    """Drops the subscription, and with it its replication slot on finance_db."""
    conn = psycopg2.connect(replica_uri)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("drop subscription if exists acme_bench")
    finally:
        conn.close()


def replicate(replica_uri: str, marker: str) -> None:
    """Enables the subscription and waits for the burst's closing marker to be applied."""
    run_sql(replica_uri, "alter subscription acme_bench enable")
    wait_until(
        lambda: run_sql(
            replica_uri,
            "select customer_name = %s from operations.customers where customer_id = 1",
            (marker,),
            fetch=True,
        )[0][0],
        "native replication",
    )


def replica_matches(pair, replica_uri: str) -> bool:
    source = psycopg2.connect(pair.finance_uri)
    replica = psycopg2.connect(replica_uri)
    try:
        for table in TABLES:
            name = ("operations", table)
            with source.cursor() as src, replica.cursor() as dst:
                columns = table_columns(src, name)
                if table_fingerprint(src, name, columns) != table_fingerprint(dst, name, columns):
                    return False
        return True
    finally:
        source.close()
        replica.close()


def wait_until(condition, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish in {timeout:.0f}s")
        time.sleep(POLL_SECONDS)
