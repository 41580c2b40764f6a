"""`acme <report> --as-of T` writes the report as it stood at commit time T. Proved against the
source: while a writer keeps changing orders and items, the test asks the source the report
questions (plain SQL, tests/oracle.py) at several moments, with a transaction held open across
them and committed last; later, after more changes, deletes and a truncate, each as-of export
must equal, byte for byte, what the source answered then."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import psycopg2
import pytest

from connections.errors import ExportError
from exporter.csv_export import export_report
from loader import capture
from loader.copy_changes import load_changes
from tests.oracle import ORACLE_QUERIES
from tests.test_reports import FIRST_ROUND

# (report, export name, limit): each report and its as-of twin.
REPORTS = [
    ("open_orders", "open_orders", None),
    ("open_orders_summary", "open_orders_summary", None),
    ("top_delivery_dates", "top_delivery_dates", 3),
    ("pending_items", "pending_items", None),
    ("top_customers", "top_customers", 3),
]
# Writers take it shared in each transaction; a moment is read holding it exclusively, so no
# writer commits while the source is read and the moment taken.
MOMENT_LOCK = 4242
STATUSES = ("PENDING", "PROCESSING", "REPROCESSING", "COMPLETED", "CANCELLED")


class Writer:
    """Random small transactions on orders and items until stopped; never on order 1 or the
    items of order 9, which the test's held transaction changes (a writer waiting for its
    row lock would hold off the moments it waits for)."""

    def __init__(self, uri: str, seed: int):
        self.uri, self.random = uri, random.Random(seed)
        self.stop, self.failures = threading.Event(), []
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        conn = psycopg2.connect(self.uri)
        try:
            while not self.stop.is_set():
                with conn, conn.cursor() as cur:
                    cur.execute("select pg_advisory_xact_lock_shared(%s)", (MOMENT_LOCK,))
                    self.one_change(cur)
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which raises it
            self.failures.append(exc)
        finally:
            conn.close()

    def one_change(self, cur) -> None:
        pick = self.random.random()
        if pick < 0.3:
            cur.execute(
                "with placed as (insert into operations.orders "
                "(customer_id, order_date, delivery_date, status) values "
                "(%s, now(), date_trunc('day', now()) + %s * interval '1 day', 'PENDING') "
                "returning order_id) insert into operations.order_items "
                "(order_id, product_id, quantity) select order_id, %s, %s from placed",
                (
                    self.random.randint(1, 5),
                    self.random.randint(0, 3),
                    self.random.randint(1, 4),
                    self.random.randint(1, 9),
                ),
            )
        elif pick < 0.7:
            cur.execute(
                "update operations.orders set status = %s where order_id = (select order_id "
                "from operations.orders where order_id <> 1 order by random() limit 1)",
                (self.random.choice(STATUSES),),
            )
        elif pick < 0.9:
            cur.execute(
                "update operations.order_items set quantity = quantity + 1 where "
                "order_item_id = (select order_item_id from operations.order_items "
                "where order_id <> 9 order by random() limit 1)"
            )
        else:
            cur.execute(
                "delete from operations.order_items where order_item_id = (select "
                "order_item_id from operations.order_items where order_id <> 9 "
                "order by random() limit 1)"
            )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.stop.set()
        self.thread.join()
        if self.failures:
            raise AssertionError(f"a write failed: {self.failures[0]}") from self.failures[0]


def source_answers_now(uri: str) -> tuple[object, dict[str, str]]:
    """The moment (the source's clock) and each report's CSV as the source answers now, with
    the writers held off: what committed before the moment is in the answers, nothing else."""
    conn = psycopg2.connect(uri, options="-c datestyle=ISO,YMD")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (MOMENT_LOCK,))
            cur.execute("begin isolation level repeatable read")
            answers = {}
            for report, _name, limit in REPORTS:
                out = _Buffer()
                query = ORACLE_QUERIES[report].format(limit=limit)
                cur.copy_expert(f"copy ({query}) to stdout with (format csv, header)", out)
                answers[report] = out.text()
            cur.execute("select clock_timestamp()")
            moment = cur.fetchone()[0]
            cur.execute("commit")
            cur.execute("select pg_advisory_unlock(%s)", (MOMENT_LOCK,))
    finally:
        conn.close()
    return moment, answers


class _Buffer:
    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> None:
        self.parts.append(data if isinstance(data, bytes) else data.encode())

    def text(self) -> str:
        return b"".join(self.parts).decode()


def export_as_of(name: str, limit: int | None, moment, path) -> str:
    export_report(name, str(path), limit, as_of=moment)
    return path.read_bytes().decode()


def test_as_of_exports_equal_what_the_source_answered_then(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    moments = []
    held = psycopg2.connect(platform.finance_uri)
    try:
        with Writer(platform.finance_uri, seed=7):
            # Held across three moments and committed after them: its xid is older than
            # changes that land before it, and it is in none of those moments' answers.
            with held.cursor() as cur:
                cur.execute("update operations.orders set status = 'COMPLETED' where order_id = 1")
                cur.execute("delete from operations.order_items where order_id = 9")
            moments.append(source_answers_now(platform.finance_uri))
            platform.pipeline_run()
            moments.append(source_answers_now(platform.finance_uri))
            platform.pipeline_run()
            moments.append(source_answers_now(platform.finance_uri))
            held.commit()
            moments.append(source_answers_now(platform.finance_uri))
            platform.finance("truncate operations.order_items")
            moments.append(source_answers_now(platform.finance_uri))
            platform.pipeline_run()
            moments.append(source_answers_now(platform.finance_uri))
    finally:
        held.close()
    # More changes after the last moment: none of them may show in it.
    platform.finance("update operations.orders set status = 'PENDING'")
    platform.finance("update operations.customers set customer_name = 'renamed'")
    platform.finance("delete from operations.orders where order_id in (3, 4)")
    platform.pipeline_run()

    for moment, answers in moments:
        for report, name, limit in REPORTS:
            exported = export_as_of(name, limit, moment, tmp_path / f"{name}.csv")
            assert exported == answers[report], (report, moment)


def test_as_of_is_bounded_by_what_the_warehouse_holds(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    (complete_through, capture_started) = platform.analytics(
        "select (select complete_through from staging.load_state), "
        "(select min(committed_at) from staging.change_log)",
        fetch=True,
    )[0]
    # No writes since the last load: a moment just before it is the live answer.
    path = tmp_path / "open_orders.csv"
    live = platform.export("open_orders", tmp_path / "live.csv")
    assert (
        export_as_of("open_orders", None, complete_through - timedelta(milliseconds=1), path)
        == live
    )

    # A load that finds nothing new still moves the moment forward.
    platform.pipeline_run()
    (moved,) = platform.analytics("select complete_through from staging.load_state", fetch=True)[0]
    assert moved > complete_through

    with pytest.raises(ExportError, match="the history is complete up to .* `acme pipeline run`"):
        export_report("open_orders", str(path), as_of=moved)
    with pytest.raises(ExportError, match="capture started at .*ask for a later moment"):
        export_report("open_orders", str(path), as_of=capture_started - timedelta(seconds=1))


def test_moments_before_commit_times_were_tracked_are_refused(platform, tmp_path):
    """finance_db starts tracking commit times only at a restart: the changes staged before
    that (here: staged commit times removed) are dated by statement time, which cannot place
    them exactly, so a moment before the first tracked commit after them is refused."""
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    platform.analytics("update staging.change_log set committed_at = null")
    (untracked_until,) = platform.analytics(
        "select max(changed_at) from staging.change_log", fetch=True
    )[0]
    platform.finance(
        "update operations.orders set status = 'PROCESSING' "
        "where order_id = (select min(order_id) from operations.orders)"
    )
    platform.pipeline_run()
    (tracked_since,) = platform.analytics(
        "select min(committed_at) from staging.change_log where committed_at is not null",
        fetch=True,
    )[0]
    path = tmp_path / "open_orders.csv"
    with pytest.raises(ExportError, match="tracked commit times only from .*a later moment"):
        export_report("open_orders", str(path), as_of=untracked_until + timedelta(milliseconds=1))
    assert not path.exists()
    export_report("open_orders", str(path), as_of=tracked_since)
    assert path.exists()


def test_moments_before_a_table_was_captured_are_refused(platform, tmp_path):
    """A table captured later holds nothing in the history before its capture started: an
    as-of moment before that would read it as empty, so it is refused."""
    platform.finance("drop schema cdc cascade")
    capture.install(["operations.orders", "operations.order_items", "operations.products"])
    platform.finance(FIRST_ROUND)  # its customers are written, not captured
    platform.pipeline_run()
    (before,) = platform.analytics("select complete_through from staging.load_state", fetch=True)[0]
    capture.install(["operations.customers"])
    platform.pipeline_run()
    (started,) = platform.analytics(
        "select min(committed_at) from staging.change_log where table_name = 'customers'",
        fetch=True,
    )[0]
    assert started > before
    path = tmp_path / "top_customers.csv"
    with pytest.raises(ExportError, match="capture started at .* for operations.customers"):
        export_report("top_customers", str(path), as_of=before - timedelta(milliseconds=1))
    assert not path.exists()
    export_report("top_customers", str(path), as_of=started)
    assert "Acme Corp" in path.read_text()


def test_as_of_on_the_command_line(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    (complete_through,) = platform.analytics(
        "select complete_through from staging.load_state", fetch=True
    )[0]
    moment = (complete_through - timedelta(milliseconds=1)).isoformat()
    path = tmp_path / "pending.csv"
    result = platform.acme("pending_items", "--as-of", moment, "--output", str(path))
    assert result.stdout.startswith(f"wrote 4 rows to {path}; as it stood at ")
    live = platform.acme("pending_items", "--output", str(tmp_path / "live.csv"))
    assert "; reflects every change committed before " in live.stdout
    assert path.read_bytes() == (tmp_path / "live.csv").read_bytes()

    later = platform.acme("top_customers", "--as-of", "2999-01-01 00:00:00", check=False)
    assert later.returncode == 1
    assert later.stderr.count("\n") == 1 and "the history is complete up to" in later.stderr
    bad = platform.acme("open_orders", "--as-of", "last tuesday", check=False)
    assert bad.returncode == 2 and "'last tuesday' is not a moment" in bad.stderr
    assert "Traceback" not in later.stderr + bad.stderr


def wait_until_commits_wait_for_the_standby(conn, admin) -> None:
    """A configuration reload reaches each server process in its own time, the checkpointer
    (which tells committing sessions a synchronous standby is configured) included; a commit
    before that does not wait. So probe with transactions of conn until one's commit waits
    (wait event SyncRep), then release it."""
    for _attempt in range(100):
        with conn.cursor() as cur:
            # A commit waits only for a transaction that wrote WAL: an xid and a WAL record
            # (a logical message, which touches no table).
            cur.execute(
                "select pg_backend_pid(), pg_current_xact_id(), "
                "pg_logical_emit_message(true, 'acme-test', 'probe')"
            )
            pid = cur.fetchone()[0]
        probe = threading.Thread(target=conn.commit)
        probe.start()
        waited = False
        while probe.is_alive() and not waited:
            with admin.cursor() as cur:
                cur.execute("select wait_event from pg_stat_activity where pid = %s", (pid,))
                waited = cur.fetchone() == ("SyncRep",)
            time.sleep(0.02)
        if waited:
            with admin.cursor() as cur:
                cur.execute("select pg_cancel_backend(%s)", (pid,))  # commits locally then
        probe.join(timeout=30)
        if waited:
            return
        time.sleep(0.1)
    raise AssertionError("no commit ever waited for the synchronous standby")


def test_a_commit_recorded_but_not_yet_visible_bounds_the_moment(platform):
    """PostgreSQL records a commit's time, then flushes it and waits for a synchronous standby,
    and only then makes the transaction visible: a load in between neither sees it nor finds
    it listed as running. Held here in a synchronous-replication wait for a standby that does
    not exist, it must still keep the load's moment at or before its commit time."""
    platform.finance(FIRST_ROUND)
    platform.pipeline_run()
    admin = psycopg2.connect(platform.finance_uri)
    admin.autocommit = True
    straggler = psycopg2.connect(platform.finance_uri)
    waiting = threading.Thread(target=straggler.commit)
    try:
        with admin.cursor() as cur:
            # Only the straggler's own session waits for the standby.
            cur.execute("alter system set synchronous_standby_names = 'nobody'")
            cur.execute("alter system set synchronous_commit = 'local'")
            cur.execute("select pg_reload_conf()")
        with straggler.cursor() as cur:
            cur.execute("set synchronous_commit = on")
        straggler.commit()
        wait_until_commits_wait_for_the_standby(straggler, admin)
        with straggler.cursor() as cur:
            cur.execute("update operations.orders set status = 'COMPLETED' where order_id = 1")
            cur.execute("select pg_current_xact_id()::text, pg_backend_pid()")
            xid, pid = cur.fetchone()
        waiting.start()
        with admin.cursor() as cur:
            committed_at = None
            for _attempt in range(200):
                cur.execute("select pg_xact_commit_timestamp(%s::xid8::xid)", (xid,))
                committed_at = cur.fetchone()[0]
                if committed_at is not None:
                    break
                time.sleep(0.05)
            assert committed_at is not None, "the straggler never recorded its commit time"
        load_changes()
        (moment,) = platform.analytics(
            "select complete_through from staging.load_state", fetch=True
        )[0]
        assert moment <= committed_at, (moment, committed_at)
        assert platform.analytics(
            "select count(*) from staging.change_log where txid = %s", (int(xid),), fetch=True
        ) == [(0,)]
        with admin.cursor() as cur:
            cur.execute("select pg_cancel_backend(%s)", (pid,))  # it commits locally then
        waiting.join(timeout=30)
    finally:
        with admin.cursor() as cur:
            cur.execute("alter system reset synchronous_standby_names")
            cur.execute("alter system reset synchronous_commit")
            cur.execute("select pg_reload_conf()")
        if waiting.ident is not None:
            waiting.join(timeout=30)
        admin.close()
        straggler.close()
    load_changes()
    assert platform.analytics(
        "select count(*) from staging.change_log where txid = %s", (int(xid),), fetch=True
    ) == [(1,)]
