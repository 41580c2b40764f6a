"""What `--follow` builds: a full `dbt build` first, then only the incremental marts each
cycle that landed changes, the history models every --history-interval seconds, and the data
tests every --test-interval seconds, whose failure stops it (pipeline/dbt_build.py,
FollowBuilds)."""

from __future__ import annotations

import time

from pipeline.cycle import run_cycle
from pipeline.dbt_build import FollowBuilds
from tests.pgbench.harness import Follower, seed_reference_data


def add_order(platform) -> None:
    platform.finance(
        "insert into operations.orders (customer_id, order_date, delivery_date, status) "
        "values (1, '2026-01-01', '2026-01-02', 'PENDING')"
    )


def cycle_lines(follower: Follower, since: float) -> list[str]:
    return [line for line in follower.own_lines(since) if " loaded 1 changes" in line]


def cycle_landing_a_new_order(platform, follower: Follower) -> str:
    """Adds an order; the line of the cycle that landed it."""
    since = time.monotonic()
    add_order(platform)
    follower.wait_for(lambda: cycle_lines(follower, since), 60, "a cycle landing 1 change")
    return cycle_lines(follower, since)[0]


def test_follow_builds_models_each_cycle_and_tests_on_their_interval(platform):
    seed_reference_data(platform)
    add_order(platform)
    follower = Follower.start("--test-interval", "3600", "--history-interval", "3600")
    try:
        follower.wait_for_cycles(1, 0.0, built=True)
        first = [line for line in follower.own_lines() if " loaded " in line][0]
        assert "; dbt build " in first, first  # every model and every data test
        line = cycle_landing_a_new_order(platform, follower)
        # the four marts, the two pending_items models and the two hooks (the build range, the
        # schema grant); no views, no history and no tests within the hour
        assert "; dbt run 8 nodes in " in line and "test" not in line, line
        rows = platform.analytics("select count(*) from reports.open_orders", fetch=True)
        assert rows[0][0] == 2
    finally:
        output = follower.stop()
    assert follower.process.returncode == 0, output[-3000:]


def test_a_failing_data_test_stops_follow_at_its_interval(platform):
    seed_reference_data(platform)
    add_order(platform)
    follower = Follower.start("--test-interval", "0")
    try:
        follower.wait_for_cycles(1, 0.0, built=True)
        line = cycle_landing_a_new_order(platform, follower)
        assert "; dbt run + test " in line, line  # --test-interval 0: tests after each load

        # A mart that no longer matches its staged changes: the reconciliation test fails.
        platform.analytics("update analytics.fact_orders set customer_id = 2 where order_id = 1")
        add_order(platform)
        follower.process.wait(timeout=120)
    finally:
        output = follower.stop()
    assert follower.process.returncode == 1, output[-3000:]
    assert "dbt test failed (is_current_state_of_fact_orders" in output, output[-3000:]
    assert "retrying in" not in output


def history_rows(platform) -> int:
    return platform.analytics("select count(*) from analytics.fact_orders_history", fetch=True)[0][
        0
    ]


def test_history_models_build_on_their_own_interval(platform):
    """FollowBuilds in this process, on a clock the test moves: real dbt, real servers."""
    seed_reference_data(platform)
    add_order(platform)
    now = [0.0]
    builds = FollowBuilds(test_interval=86400, history_interval=30, clock=lambda: now[0])

    def cycle(first: bool = False):
        return run_cycle(build_when_idle=first, follow_builds=builds).build

    assert cycle(first=True).command == "build"
    assert history_rows(platform) == 1
    add_order(platform)
    now[0] = 10
    assert cycle().nodes == 8  # the marts and the two hooks: the reports are current
    assert platform.analytics("select count(*) from reports.open_orders", fetch=True) == [(2,)]
    assert history_rows(platform) == 1  # the history waits for its interval
    now[0] = 20
    assert cycle() is None  # nothing new, history not due
    now[0] = 31
    assert cycle().nodes == 8  # nothing new, but history behind and due: the six histories
    assert history_rows(platform) == 2
    now[0] = 45
    assert cycle() is None  # history is current: nothing to build however long it waits
    add_order(platform)
    now[0] = 70
    assert cycle().nodes == 14  # changes, and history due: marts and histories at once
    assert history_rows(platform) == 3
    # Data tests due: they hold each history to its mart, so the history is built first.
    builds.test_interval = 0
    add_order(platform)
    now[0] = 80
    build = cycle()
    assert build.command == "run + test", build
    assert history_rows(platform) == 4
