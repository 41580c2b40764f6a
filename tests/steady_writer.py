"""A writer that keeps inserting customers, one autocommitted row at a time, while a test
does something to capture or the log beside it: every write must succeed and land once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2


@contextmanager
def steady_writer(uri: str, name: str, pause: float = 0.0) -> Iterator[list[int]]:
    """Yields the ids written so far; on exit, stops the writer and raises its failure."""
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def keep_writing() -> None:
        conn = psycopg2.connect(uri)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(
                        "insert into operations.customers (customer_name) values (%s) "
                        "returning customer_id",
                        (name,),
                    )
                    written.append(cur.fetchone()[0])
                    time.sleep(pause)
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which raises it
            failures.append(exc)
        finally:
            conn.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        yield written
    finally:
        stop.set()
        writer.join()
    if failures:
        raise AssertionError(f"a write failed: {failures[0]}") from failures[0]
