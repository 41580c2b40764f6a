"""Catch-up after a burst, and load throughput on the same bursts.

The consumers are paused while the source takes a burst of changes, then timed until the
warehouse's current-state tables match the source. Ours is the load (in a process of its own,
for its peak memory; the loader's own time, without the process start that --follow does not
pay) and the incremental dbt run of a --follow cycle; the baseline is PostgreSQL's own logical
replication (a publication on finance_db, a subscription in a replica database on the
analytics server) catching up on the very same burst. The loader's time on each burst is
also the load throughput figure, against a raw COPY of the burst's change-log rows. Both
consumers are checked against the source after the last burst, outside the timing."""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql

from bench import datasets
from bench.cluster import Cluster, create_database, run_sql
from bench.figures import load_throughput
from bench.measure import median, timed, turn_order
from bench.results import Row
from bench.warehouse import Warehouse
from connections.settings import PROJECT_ROOT
from reconcile.verify import table_columns, table_fingerprint, verify

TABLES = ("customers", "products", "orders", "order_items")
POLL_SECONDS = 0.02


@dataclass
class Bursts:
    sizes: list[int] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    native: list[float] = field(default_factory=list)
    loader_rates: list[float] = field(default_factory=list)
    raw_rates: list[float] = field(default_factory=list)
    loader_peaks: list[float] = field(default_factory=list)
    load_seconds: list[float] = field(default_factory=list)
    build_seconds: list[float] = field(default_factory=list)

    def rows(self) -> list[Row]:
        size = median(self.sizes)
        ours_s, native_s = median(self.ours), median(self.native)
        ratio = ours_s / native_s
        catch_up = Row(
            f"catch-up after a {size:,.0f}-change burst",
            ours_s,
            "s",
            native_s,
            "native logical replication",
            ratio,
            "≤ 1.0 (ours ÷ native)",
            ratio <= 1.0,
            self.ours,
            note=(
                f"ours is the load, {median(self.load_seconds):.2f} s, then the incremental "
                f"dbt run, {median(self.build_seconds):.2f} s (medians)"
            ),
        )
        return [load_throughput.row(size, self.loader_rates, self.raw_rates), catch_up]


def burst_orders(changes: int) -> int:
    """Orders whose insert (an order and its items) and one status update make `changes`."""
    return max(1, changes // (2 + datasets.ITEMS_PER_ORDER))


def run(cluster: Cluster, changes: int, reps: int, progress) -> Bursts:
    pair = cluster.pair("catchup")
    datasets.install_source(pair)
    datasets.add_reference_data(pair, 10_000)
    datasets.add_orders(pair, 10_000)
    warehouse = Warehouse(pair)
    warehouse.load()
    warehouse.build_all()
    load_throughput.prepare_raw_table(pair)
    replica_uri = cluster.server_uri(cluster.analytics_uri, "replica_catchup")
    subscribe(pair, replica_uri)
    bursts = Bursts()

    def ours(_burst) -> None:
        landed, load_seconds, peak = load_throughput.load_in_child(pair)
        assert landed == bursts.sizes[-1], f"loaded {landed:,} of {bursts.sizes[-1]:,}"
        build_seconds = timed(warehouse.incremental)
        seconds = load_seconds + build_seconds
        bursts.ours.append(seconds)
        bursts.load_seconds.append(load_seconds)
        bursts.build_seconds.append(build_seconds)
        bursts.loader_rates.append(landed / load_seconds)
        bursts.loader_peaks.append(peak)
        progress(
            f"  ours: caught up in {seconds:.2f}s (loader {landed / load_seconds:,.0f} "
            f"changes/s, {peak:.0f} MB)"
        )

    def native(burst) -> None:
        # One connection, opened before the clock starts: the poll costs the machine what a
        # monitoring session would, as the loader's own connections are long-lived too.
        with closing(psycopg2.connect(replica_uri)) as replica:
            replica.autocommit = True
            seconds = timed(lambda: replicate(replica, burst["marker"]))
        bursts.native.append(seconds)
        progress(f"  native logical replication: caught up in {seconds:.2f}s")

    def raw(burst) -> None:
        seconds = load_throughput.raw_copy(pair, burst["after"])
        bursts.raw_rates.append(bursts.sizes[-1] / seconds)
        progress(f"  raw COPY: {bursts.sizes[-1] / seconds:,.0f} changes/s")

    # One burst per repetition feeds all three, in turn order.
    measurements = [raw, ours, native]
    for rep in range(reps):
        run_sql(replica_uri, "alter subscription acme_bench disable")
        (before,) = pair.finance("select max(change_id) from cdc.change_log", fetch=True)[0]
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
        (size,) = pair.finance(
            "select count(*) from cdc.change_log where change_id > %s", (before,), fetch=True
        )[0]
        bursts.sizes.append(size)
        progress(f"  burst of {size:,} changes")
        for measure in turn_order(rep, measurements):
            measure({"marker": marker, "after": before})
    # Both caught up with the source, checked row by row once, after the last burst (a check
    # after every burst cost 40 s of the run's 15-minute budget).
    with pair.active():
        outcome = verify()
    assert outcome.ok, f"warehouse does not match the source after catch-up: {outcome}"
    assert replica_matches(pair, replica_uri), "replica does not match the source"
    unsubscribe(replica_uri)
    return bursts


def subscribe(pair, replica_uri: str, copy_data: bool = True) -> None:
    """A replica database subscribed to the operations tables; without copy_data it starts
    empty and receives only what is written from now on."""
    create_database(replica_uri, fresh=True)
    schema = (PROJECT_ROOT / "sql" / "schema" / "operations.sql").read_text()
    run_sql(replica_uri, schema)
    pair.finance(
        "create publication acme_bench for table "
        + ", ".join(f"operations.{table}" for table in TABLES)
    )
    run_sql(
        replica_uri,
        "create subscription acme_bench connection %s publication acme_bench with (copy_data = %s)",
        (pair.finance_uri, copy_data),
        autocommit=True,
    )
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
    run_sql(replica_uri, "drop subscription if exists acme_bench", autocommit=True)


def replicate(replica, marker: str) -> None:
    """Enables the subscription and waits, polling on the replica connection it is given, for
    the burst's closing marker to be applied."""
    with replica.cursor() as cur:
        cur.execute("alter subscription acme_bench enable")

        def applied() -> bool:
            cur.execute(
                "select customer_name = %s from operations.customers where customer_id = 1",
                (marker,),
            )
            return cur.fetchone()[0]

        wait_until(applied, "native replication")


def replica_matches(pair, replica_uri: str) -> bool:
    source = psycopg2.connect(pair.finance_uri)
    replica = psycopg2.connect(replica_uri)
    try:
        for table in TABLES:
            name = ("operations", table)
            with source.cursor() as src, replica.cursor() as dst:
                column_types = table_columns(src, name)
                columns = list(column_types)
                rows = sql.Identifier(*name)
                if table_fingerprint(src, rows, columns, column_types) != table_fingerprint(
                    dst, rows, columns, column_types
                ):
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
