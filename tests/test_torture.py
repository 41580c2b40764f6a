"""Concurrency torture: the real pgbench drives the order workload against finance_db with
many clients, while a few transactions stay open across several loads and then commit in
the reverse order of their transaction ids, and `acme pipeline run --follow` keeps loading.
Afterwards the warehouse equals the source and every change is staged exactly once.

The late commits are what a `change_id > last_seen` loader gets wrong: the held
transactions' changes carry low change ids (written first) and high ones (written just
before commit), and the youngest commits first. The txid horizon must neither load past
an open transaction nor skip its changes once it commits.
"""

from __future__ import annotations

import time

import psycopg2
import pytest

from tests.pgbench.harness import (
    Follower,
    assert_every_change_staged_once,
    finish_pgbench,
    pipeline_status,
    seed_reference_data,
    sized,
    start_pgbench,
    verify_passes,
    wait_until_drained,
)

SEEDS = sized([101, 202], [101, 202, 303, 404, 505, 606])
CLIENTS = sized(8, 16)
PGBENCH_SECONDS = sized(6, 40)
HELD_TRANSACTIONS = sized(3, 5)
LOADS_WHILE_HELD = sized(3, 6)


class HeldTransaction:
    """A writer that opens an order, stays open across loads, and writes again at commit."""

    def __init__(self, platform, number: int):
        self.conn = psycopg2.connect(platform.finance_uri, application_name=f"held-{number}")
        self.number = number
        with self.conn.cursor() as cur:
            cur.execute("set role acme_app")
            cur.execute(
                "insert into operations.orders (customer_id, order_date, delivery_date, status)"
                " values (%s, now() at time zone 'utc', now() at time zone 'utc', 'PENDING')"
                " returning order_id",
                (number + 1,),
            )
            self.order_id = cur.fetchone()[0]
            cur.execute(
                "insert into operations.order_items (order_id, product_id, quantity) "
                "select %s, n, n from generate_series(1, 3) as n",
                (self.order_id,),
            )
            cur.execute("select pg_current_xact_id()::text::bigint, pg_backend_pid()")
            self.xid, self.pid = cur.fetchone()

    def write_again_and_commit(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "update operations.orders set status = 'PROCESSING' where order_id = %s",
                (self.order_id,),
            )
            cur.execute(
                "update operations.customers set customer_name = customer_name || ' (held)' "
                "where customer_id = %s",
                (self.number + 1,),
            )
        self.conn.commit()
        self.conn.close()

    def abandon(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def newest_staged_txid(platform) -> int:
    return platform.analytics("select coalesce(max(txid), 0) from staging.change_log", fetch=True)[
        0
    ][0]


def staged_changes_of(platform, txid: int) -> int:
    return platform.analytics(
        "select count(*) from staging.change_log where txid = %s", (txid,), fetch=True
    )[0][0]


@pytest.mark.parametrize("seed", SEEDS)
def test_pgbench_with_late_commits_lands_every_change_exactly_once(platform, seed):
    seed_reference_data(platform)
    follower = Follower.start()
    bench = start_pgbench(platform, clients=CLIENTS, seconds=PGBENCH_SECONDS, seed=seed)
    held: list[HeldTransaction] = []
    try:
        time.sleep(0.5)
        held = [HeldTransaction(platform, number) for number in range(HELD_TRANSACTIONS)]
        assert [t.xid for t in held] == sorted(t.xid for t in held)
        opened = time.monotonic()
        follower.wait_for_cycles(LOADS_WHILE_HELD, since=opened, timeout=180)
        # Loads have run, and none went past the oldest open transaction.
        assert newest_staged_txid(platform) < held[0].xid
        follower.wait_for(
            lambda: (
                (pipeline_status(platform)["oldest_open_transaction"] or {}).get("pid")
                == held[0].pid
            ),
            30,
            "status to name the oldest held transaction",
        )
        # Youngest first: each commit is late for every older one still open.
        for position, transaction in enumerate(reversed(held)):
            transaction.write_again_and_commit()
            committed = time.monotonic()
            follower.wait_for_cycles(1, since=committed, timeout=120)
            still_open = held[: len(held) - position - 1]
            if still_open:
                assert newest_staged_txid(platform) < still_open[0].xid
                assert staged_changes_of(platform, transaction.xid) == 0
        run = finish_pgbench(bench)
        assert run.returncode == 0, run.output
        assert run.processed > CLIENTS * PGBENCH_SECONDS and run.failed == 0, run.output
        wait_until_drained(platform, follower)
        for transaction in held:
            # 1 order + 3 items, then the order and the customer again.
            assert staged_changes_of(platform, transaction.xid) == 6
    finally:
        for transaction in held:
            transaction.abandon()
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        output = follower.stop()
    assert follower.process.returncode == 0, output[-3000:]
    assert "stopped cleanly after" in output and "Traceback" not in output
    report = verify_passes(platform)
    staged = assert_every_change_staged_once(platform)
    print(
        f"seed {seed}: pgbench {run.processed} transactions from {CLIENTS} clients, "
        f"{HELD_TRANSACTIONS} held transactions committed in reverse xid order, "
        f"{staged} changes staged exactly once, {report['rows_verified']} rows verified"
    )
