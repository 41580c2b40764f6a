"""`acme capture prune` drops whole segments of the change log: only segments the warehouse
has landed whole, never one a writer may still add to, and writers never fail for it."""

from __future__ import annotations

import threading

import psycopg2

from loader.copy_changes import load_changes
from tests.steady_writer import steady_writer
from tests.test_restore import assert_verified, logged, staged

ROUND = ["simulate", "--orders", "30", "--concurrency", "2"]


def partitions(platform) -> list[str]:
    return [
        name
        for (name,) in platform.finance(
            "select inhrelid::regclass::text from pg_inherits "
            "where inhparent = 'cdc.change_log'::regclass order by 1",
            fetch=True,
        )
    ]


def prune(platform) -> str:
    return platform.acme("capture", "prune", "--older-than", "0s").stdout


def test_a_change_committed_late_into_a_closed_segment_is_landed_before_it_is_dropped(platform):
    platform.acme(*ROUND, "--seed", "31")
    platform.pipeline_run()
    late = psycopg2.connect(platform.finance_uri)
    try:
        with late.cursor() as cur:
            cur.execute(
                "insert into operations.customers (customer_name) values ('late') "
                "returning customer_id"
            )
            late_customer = cur.fetchone()[0]
        # Prune closes segment 0 (it holds changes) with the late change in it, uncommitted.
        # It must wait for the writer before moving the sequence (a statement still running
        # might hand out ids past its partitions), and the drop must see its change then.
        seen_before_commit = []

        def commit_late() -> None:
            seen_before_commit.append(
                platform.finance("select cdc.current_segment()", fetch=True)[0][0]
            )
            late.commit()

        committer = threading.Timer(3, commit_late)
        committer.start()
        kept = prune(platform)
        committer.join()
    finally:
        late.close()
    assert seen_before_commit == [0], "the sequence moved while a writer was still open"
    assert "dropped 0 segments" in kept
    assert partitions(platform) == ["cdc.change_log_s0", "cdc.change_log_s1", "cdc.change_log_s2"]
    assert "in 3 segments" in platform.acme("capture", "status").stdout
    platform.pipeline_run()
    assert platform.analytics(
        "select customer_name from analytics.dim_customers where customer_id = %s",
        (late_customer,),
        fetch=True,
    ) == [("late",)]
    assert "dropped 1 segment" in prune(platform)
    assert logged(platform) == 0
    assert_verified(platform)


def test_the_log_stays_flat_over_cycles_and_writers_never_fail(platform):
    sizes = []
    with steady_writer(platform.finance_uri, "steady", pause=0.005) as written:
        for seed in range(40, 46):
            platform.acme(*ROUND, "--seed", str(seed))
            # Prune drops what has landed: a load, in this process, is all a cycle needs (the
            # build after the loop checks everything landed once).
            load_changes()
            prune(platform)
            assert len(partitions(platform)) <= 3, "at most one closed, the current, the next"
            sizes.append(logged(platform))
    assert len(written) > 100
    # What remains is at most what was written since the previous load, never the history.
    assert max(sizes) < staged(platform)[0] / 2
    platform.pipeline_run()
    assert_verified(platform)
    steady = platform.analytics(
        "select count(*) from analytics.dim_customers where customer_name = 'steady'", fetch=True
    )
    assert steady == [(len(written),)], "every write landed once"


def test_resync_onto_a_new_log_moves_change_ids_into_a_segment_of_their_own(platform):
    platform.acme(*ROUND, "--seed", "51")
    platform.pipeline_run()
    prune(platform)  # the warehouse now holds change_ids of segment 1
    platform.acme(*ROUND, "--seed", "52")
    platform.pipeline_run()
    platform.acme("capture", "uninstall", "--purge")
    platform.acme("capture", "install")  # a new log, starting again in segment 0
    refused = platform.acme("pipeline", "run", check=False)
    assert refused.returncode == 1 and "acme pipeline resync" in refused.stderr
    platform.acme("pipeline", "resync")
    assert "cdc.change_log_s1" in partitions(platform)
    platform.finance("insert into operations.customers (customer_name) values ('after')")
    platform.pipeline_run()
    assert_verified(platform)
    count, distinct = staged(platform)
    assert count == distinct


def test_a_sequence_restored_past_the_partitions_is_named_and_install_puts_it_right(platform):
    """A dump taken while prune moved the sequence can restore it into a segment the dump
    holds no partition for: every captured write fails until `acme capture install`."""
    platform.pipeline_run()
    platform.finance(
        "select setval(pg_get_serial_sequence('cdc.change_log', 'change_id'), "
        "5 * cdc.segment_width(), false)"
    )
    refused = platform.acme("pipeline", "run", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "run `acme capture install`, which attaches it" in refused.stderr
    platform.acme("capture", "install")
    assert {"cdc.change_log_s5", "cdc.change_log_s6"} <= set(partitions(platform))
    platform.finance("insert into operations.customers (customer_name) values ('restored')")
    platform.pipeline_run()
    assert_verified(platform)
