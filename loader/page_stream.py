"""Streams one page of COPY rows from the source connection into the target's COPY.

The source's `COPY ... TO STDOUT` runs in a helper thread and the target's `COPY ... FROM
STDIN` in the caller's, joined by a bounded queue of ~1 MB chunks: both servers work at once,
and the loader holds at most QUEUE_CHUNKS chunks however large the page.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass

CHUNK_BYTES = 1 << 20
QUEUE_CHUNKS = 8
_END = object()


class StreamCancelled(Exception):
    """The reading side gave up; the writing side stops copying."""


@dataclass
class PageSummary:
    rows: int
    first_row: bytes | None
    last_row: bytes | None


class _Writer:
    """The file psycopg2 writes the source's rows to, one row per write()."""

    def __init__(self, chunks: queue.Queue, cancelled: threading.Event):
        self.chunks, self.cancelled = chunks, cancelled
        self.rows = 0
        self.first_row: bytes | None = None
        self.last_row: bytes | None = None
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, row: bytes) -> None:
        if self.first_row is None:
            self.first_row = row
        self.rows += 1
        self.last_row = row
        self.parts.append(row)
        self.size += len(row)
        if self.size >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.put(b"".join(self.parts))
            self.parts, self.size = [], 0

    def put(self, item) -> None:
        while True:
            if self.cancelled.is_set():
                raise StreamCancelled
            try:
                self.chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


class _Reader:
    """The file psycopg2 reads the target's COPY input from."""

    def __init__(self, chunks: queue.Queue):
        self.chunks = chunks
        self.pending = memoryview(b"")
        self.finished = False

    def read(self, size: int = -1) -> bytes:
        if not self.pending and not self.finished:
            item = self.chunks.get()
            if item is _END:
                self.finished = True
            elif isinstance(item, BaseException):
                self.finished = True
                raise item
            else:
                self.pending = memoryview(item)
        if size is None or size < 0:
            size = len(self.pending)
        data, self.pending = self.pending[:size], self.pending[size:]
        return bytes(data)


def stream_copy(source_cursor, copy_out_sql: str, target_cursor, copy_in_sql: str) -> PageSummary:
    """Runs both COPYs at once; a failure on either side stops the other and is raised."""
    chunks: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    cancelled = threading.Event()
    writer = _Writer(chunks, cancelled)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            source_cursor.copy_expert(copy_out_sql, writer)
            writer.flush()
            writer.put(_END)
        except StreamCancelled:
            pass
        except BaseException as exc:  # handed to the reading side, which raises it
            failure.append(exc)
            with contextlib.suppress(StreamCancelled):
                writer.put(exc)

    producer = threading.Thread(target=produce, name="acme-copy-out", daemon=True)
    producer.start()
    try:
        target_cursor.copy_expert(copy_in_sql, _Reader(chunks), size=CHUNK_BYTES)
    except BaseException:
        cancelled.set()
        producer.join()
        if failure:
            raise failure[0] from None
        raise
    producer.join()
    if failure:
        raise failure[0]
    return PageSummary(writer.rows, writer.first_row, writer.last_row)
