"""Order lifecycle: fact_order_status_changes holds each order's status intervals, dated by the
commit times the source itself reports for the transactions that made them; `acme
order_lifecycle` counts the intervals that ended in a window (live and --as-of), and `acme
order_history` prints an order's versions."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import psycopg2

from exporter.csv_export import export_report
from tests.test_reports import FIRST_ROUND

# A moved delivery date keeps the interval; a status set twice in one transaction leaves the
# first one valid at no moment, so no interval.
STEPS = [
    (
        "a placed",
        "insert into operations.orders (order_id, customer_id, order_date, status) "
        "values (101, 1, now(), 'PENDING')",
    ),
    ("a processing", "update operations.orders set status = 'PROCESSING' where order_id = 101"),
    ("a moved", "update operations.orders set delivery_date = '2026-02-01' where order_id = 101"),
    ("a completed", "update operations.orders set status = 'COMPLETED' where order_id = 101"),
    (
        "b placed",
        "insert into operations.orders (order_id, customer_id, order_date, status) "
        "values (102, 2, now(), 'PENDING');"
        "update operations.orders set status = 'PROCESSING' where order_id = 102",
    ),
    ("b deleted", "delete from operations.orders where order_id = 102"),
    (
        "c placed",
        "insert into operations.orders (order_id, customer_id, order_date, status) "
        "values (103, 3, now(), 'PENDING')",
    ),
]


def committed(uri: str, statements: str):
    """Runs the statements in one transaction; its commit time, as the source records it."""
    conn = psycopg2.connect(uri)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statements)
            cur.execute("select pg_current_xact_id()::text")
            xid = cur.fetchone()[0]
        with conn, conn.cursor() as cur:
            cur.execute("select pg_xact_commit_timestamp(%s::xid8::xid)", (xid,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def lifecycle_csv(platform, tmp_path, **options) -> str:
    path = tmp_path / "order_lifecycle.csv"
    export_report("order_lifecycle", str(path), **options)
    return path.read_bytes().decode()


def expected_lifecycle(platform, intervals, since=None, until=None, ended_by=None) -> str:
    """The report over the given intervals (status, entered, left), by plain SQL."""
    kept = [
        (status, (left - entered).total_seconds() / 3600)
        for status, entered, left in intervals
        if left is not None
        and (since is None or left >= since)
        and (until is None or left < until)
        and (ended_by is None or left <= ended_by)
    ]
    conn = psycopg2.connect(platform.analytics_uri)
    try:
        with conn, conn.cursor() as cur:
            out = io.BytesIO()
            values = ", ".join(cur.mogrify("(%s, %s::float8)", row).decode() for row in kept)
            query = (
                "select status, count(*) as intervals, "
                "round((percentile_cont(0.5) within group (order by hours))::numeric, 3) "
                "as median_hours, "
                "round((percentile_cont(0.9) within group (order by hours))::numeric, 3) "
                "as p90_hours, round(max(hours)::numeric, 3) as max_hours "
                f"from (values {values or '(null, null)'}) as t (status, hours) "
                "where status is not null group by status order by status"
            )
            cur.copy_expert(f"copy ({query}) to stdout with (format csv, header)", out)
            return out.getvalue().decode()
    finally:
        conn.close()


def test_status_intervals_and_the_lifecycle_report(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    at = {name: committed(platform.finance_uri, sql) for name, sql in STEPS}
    platform.pipeline_run()

    rows = platform.analytics(
        "select order_id, status, entered_at, left_at, left_by, duration "
        "from analytics.fact_order_status_changes where order_id > 100 "
        "order by order_id, entered_at",
        fetch=True,
    )
    expected = [
        (101, "PENDING", at["a placed"], at["a processing"], "UPDATE"),
        (101, "PROCESSING", at["a processing"], at["a completed"], "UPDATE"),
        (101, "COMPLETED", at["a completed"], None, None),
        (102, "PROCESSING", at["b placed"], at["b deleted"], "DELETE"),
        (103, "PENDING", at["c placed"], None, None),
    ]
    assert [row[:5] for row in rows] == expected
    assert all(row[5] == (row[3] - row[2] if row[3] else None) for row in rows)

    # The report over every order: these and the first round's (all still in their status).
    intervals = [(status, entered, left) for _id, status, entered, left, _by in expected]
    assert lifecycle_csv(platform, tmp_path) == expected_lifecycle(platform, intervals)
    # A window on the moment an interval ended: --since inclusive, --until exclusive.
    since, until = at["a completed"], at["b deleted"]
    window = {
        "acme.lifecycle_since": since.isoformat(),
        "acme.lifecycle_until": until.isoformat(),
    }
    assert lifecycle_csv(platform, tmp_path, settings=window) == expected_lifecycle(
        platform, intervals, since=since, until=until
    )
    # As of a moment between: only what had ended by then.
    moment = at["b placed"]
    assert lifecycle_csv(platform, tmp_path, as_of=moment) == expected_lifecycle(
        platform, intervals, ended_by=moment
    )
    assert "PROCESSING,1," in expected_lifecycle(platform, intervals, ended_by=moment)


def test_lifecycle_and_order_history_on_the_command_line(platform, tmp_path):
    platform.finance(FIRST_ROUND)
    at = {name: committed(platform.finance_uri, sql) for name, sql in STEPS}
    platform.pipeline_run()

    path = tmp_path / "lifecycle.csv"
    since = (at["a completed"] - timedelta(microseconds=1)).isoformat()
    result = platform.acme("order_lifecycle", "--since", since, "--output", str(path))
    assert result.stdout.startswith(f"wrote 1 rows to {path}; reflects every change committed")
    assert path.read_text().splitlines()[1].startswith("PROCESSING,2,")
    wrong = platform.acme(
        "order_lifecycle", "--since", "2026-02-01", "--until", "2026-01-01", check=False
    )
    assert wrong.returncode == 2 and "must be later than --since" in wrong.stderr

    history = platform.acme("order_history", "101").stdout.splitlines()
    assert history[0].startswith("order 101: 4 versions")
    statuses = [re.search(r"\b(PENDING|PROCESSING|COMPLETED)\b", line) for line in history[2:6]]
    assert [found and found[1] for found in statuses] == [
        "PENDING",
        "PROCESSING",
        "PROCESSING",
        "COMPLETED",
    ]
    assert history[6:8] == ["", "its items: 0, 0 versions"]
    missing = platform.acme("order_history", "999", check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "order 999 has no version in the history" in missing.stderr
