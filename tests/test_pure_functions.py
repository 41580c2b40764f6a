"""The pure functions the CLI and the pipeline are built from, tested without a server: URI
handling, one-line error messages, the contracts read from the dbt project, page streaming
and the cycle's summary line."""

from __future__ import annotations

import queue
import threading

import pytest

from connections.errors import ConfigurationError, first_line
from connections.settings import PROJECT_ROOT, parse_uri, redact
from exporter.reports import REPORTS, export_query, read_order_statuses
from loader.capture import FIRST_SEGMENT_START
from loader.copy_changes import LoadResult
from loader.page_stream import _END, StreamCancelled, _Reader, _Writer
from pipeline.cycle import CycleResult
from pipeline.dbt_build import BuildResult
from pipeline.marts import MARTS, read_marts


def test_a_uri_gives_what_dbt_reads_with_escapes_undone():
    parts = parse_uri("postgresql://analytics_user:p%40ss%3Aword@db.example:6543/my%20db", "X")
    assert (parts.host, parts.port, parts.user) == ("db.example", 6543, "analytics_user")
    assert (parts.password, parts.dbname) == ("p@ss:word", "my db")
    defaults = parse_uri("postgres://u@/analytics_db", "X")
    assert (defaults.host, defaults.port, defaults.password) == ("localhost", 5432, "")


@pytest.mark.parametrize(
    "uri, fragment",
    [
        ("mysql://u:p@h/db", "X must be a postgresql:// URI"),
        ("analytics_db", "X must be a postgresql:// URI"),
        ("postgresql://u:p@h:notaport/db", "X has an invalid port"),
        ("postgresql://u:p@h:99999/db", "X has an invalid port"),
    ],
)
def test_a_bad_uri_names_its_variable(uri, fragment):
    with pytest.raises(ConfigurationError, match=fragment):
        parse_uri(uri, "X")


def test_redact_hides_only_the_password():
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


class ServerError(Exception):
    def __init__(self, pgerror: str):
        super().__init__(pgerror)
        self.pgerror = pgerror


@pytest.mark.parametrize(
    "error, line",
    [
        (ValueError("first\nsecond"), "first"),
        (ValueError(""), "ValueError"),
        (ServerError("FATAL:  terminating connection"), "terminating connection"),
        (
            ServerError('ERROR:  relation "x" does not exist\nLINE 1: ...'),
            'relation "x" does not exist',
        ),
    ],
)
def test_first_line_is_what_a_one_line_message_quotes(error, line):
    assert first_line(error) == line


def test_reports_read_from_the_yml_give_the_export_queries():
    assert list(REPORTS) == [
        "open_orders",
        "open_orders_summary",
        "top_delivery_dates",
        "pending_items",
        "top_customers",
        "order_lifecycle",
    ]
    assert export_query(REPORTS["open_orders"], 3) == (
        "select order_id, customer_id, order_date, delivery_date, status "
        "from reports.open_orders order by delivery_date, status, order_id"
    )
    # a ranked report: sorted by its rank, limited, the rank left out of the file
    assert export_query(REPORTS["top_customers"], 3) == (
        "select customer_id, customer_name, total_orders from reports.top_customers "
        "order by customer_rank limit 3"
    )


def test_statuses_and_marts_come_from_the_dbt_project():
    statuses = read_order_statuses()
    assert statuses.closed == ("COMPLETED", "CANCELLED") and statuses.pending == "PENDING"
    assert {mart.source: mart.name for mart in MARTS} == {
        ("operations", "customers"): "dim_customers",
        ("operations", "products"): "dim_products",
        ("operations", "orders"): "fact_orders",
        ("operations", "order_items"): "fact_order_items",
    }


def test_a_mart_without_a_staging_model_is_refused(tmp_path):
    yml = tmp_path / "marts.yml"
    yml.write_text(
        "models:\n  - name: m\n    data_tests:\n      - is_current_state_of:\n"
        "          arguments:\n            staged_model: ref('orders')\n"
    )
    with pytest.raises(ValueError, match="names no stg_ model"):
        read_marts(yml)


def test_page_stream_hands_rows_through_in_order_and_counts_them():
    chunks: queue.Queue = queue.Queue(maxsize=4)
    writer, reader = _Writer(chunks, threading.Event()), _Reader(chunks)
    rows = [f"{n}\trow {n}\n".encode() for n in range(1000)]

    def produce() -> None:
        for row in rows:
            writer.write(row)
        writer.flush()
        writer.put(_END)

    producer = threading.Thread(target=produce)
    producer.start()
    received = b""
    while chunk := reader.read(100):
        received += chunk
    producer.join()
    assert received == b"".join(rows)
    assert (writer.rows, writer.first_row, writer.last_row) == (1000, rows[0], rows[-1])


def test_page_stream_writer_stops_when_the_reader_gave_up():
    cancelled = threading.Event()
    writer = _Writer(queue.Queue(maxsize=1), cancelled)
    writer.put(b"fills the queue")
    cancelled.set()
    with pytest.raises(StreamCancelled):
        writer.put(b"nobody reads this")


def test_a_cycle_line_says_what_was_loaded_and_built():
    load = LoadResult(changes=3, batches=1, seconds=0.25)
    built = CycleResult(load, BuildResult(1.5, 9)).describe()
    assert built == "loaded 3 changes in 1 batches (0.25s, 12 changes/s); dbt build 9 nodes in 1.5s"
    idle = CycleResult(LoadResult(), None).describe()
    assert idle.endswith("; nothing new, no build") and "0 changes/s" in idle


def test_the_plain_log_is_prepared_for_the_first_segment_the_sql_installs():
    installed = (PROJECT_ROOT / "sql" / "triggers" / "change_log.sql").read_text()
    assert f"as $$ select {FIRST_SEGMENT_START}::bigint $$" in installed
