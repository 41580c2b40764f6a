"""What `--follow` builds: a full `dbt build` first, then only the incremental marts each
cycle that landed changes, and the data tests every --test-interval seconds, whose failure
stops it (pipeline/dbt_build.py, FollowBuilds)."""

from __future__ import annotations

import time

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
    follower = Follower.start("--test-interval", "3600")
    try:
        follower.wait_for_cycles(1, 0.0, built=True)
        first = [line for line in follower.own_lines() if " loaded " in line][0]
        assert "; dbt build " in first, first  # every model and every data test
        line = cycle_landing_a_new_order(platform, follower)
        # the four marts, the two pending_items models and the two hooks (the build range, the
        # schema grant); no views, no tests within the hour
        assert "; dbt run 12 nodes in " in line and "test" not in line, line
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
