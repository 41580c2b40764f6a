"""`acme capture prune`: drops from the source's change log the segments the warehouse has
landed.

The log is partitioned into segments of change_ids (sql/triggers/change_log.sql), the one
after the current segment always attached ahead. Prune closes the current segment once its
first change is older than the retention, by moving the change_id sequence into the next
one, and drops each closed segment whose every change is at or below the warehouse's
watermark and which was closed longer ago than the retention: a DROP of a partition, not a
DELETE, so it leaves no dead rows for vacuum. The staged history in analytics_db keeps every
change. cdc.prune_state records how far the log was pruned, so a warehouse later restored to
an older watermark is told, not misled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED

from connections.connect import connected
from connections.errors import PipelineError
from connections.locks import PRUNE_LOCK_KEY
from connections.settings import ANALYTICS, FINANCE
from loader.capture import require_installed, segment_count
from loader.locking import GIVE_UP_SECONDS, retry_on_lock_conflict, set_short_lock_wait
from loader.watermark import Watermark, check_same_source, read_watermark, source_identity


@dataclass(frozen=True)
class PruneResult:
    segments_dropped: int
    through_change_id: int | None  # the last change dropped, in the loader's order
    segments_kept: int


def prune(retention_seconds: float) -> PruneResult:
    with (
        connected(ANALYTICS, application_name="acme capture prune") as analytics,
        analytics,
        analytics.cursor() as cur,
    ):
        watermark = read_watermark(cur)
    if watermark is None:
        raise PipelineError(
            "nothing has been loaded into analytics_db yet, so no change can be pruned: "
            "run `acme pipeline run` first"
        )
    with connected(FINANCE, application_name="acme capture prune") as finance:
        # Each check of a segment must see what committed before it: never a snapshot held
        # from before a lock was awaited (the database's default isolation may be higher).
        finance.set_session(isolation_level=ISOLATION_LEVEL_READ_COMMITTED)
        with finance, finance.cursor() as cur:
            require_installed(cur)
            cur.execute("select pg_try_advisory_lock(%s)", (PRUNE_LOCK_KEY,))
            if not cur.fetchone()[0]:
                raise PipelineError(
                    "another `acme capture prune` is running on finance_db: let it finish"
                )
            check_same_source(watermark, source_identity(cur))
        retry_on_lock_conflict(
            lambda: close_due_segment(finance, retention_seconds), "capture prune"
        )
        wait_for_readers(finance)
        dropped = retry_on_lock_conflict(
            lambda: drop_landed_segments(finance, watermark, retention_seconds), "capture prune"
        )
        with finance, finance.cursor() as cur:
            kept = segment_count(cur)
    through = max(((txid, change_id) for _segment, txid, change_id in dropped), default=None)
    return PruneResult(len(dropped), through[1] if through else None, kept)


@contextmanager
def as_loader(finance) -> Iterator:
    """One transaction as acme_loader, its lock waits short: yields the cursor."""
    with finance, finance.cursor() as cur:
        cur.execute("set local role acme_loader")
        set_short_lock_wait(cur)
        yield cur


def close_due_segment(finance, retention_seconds: float) -> None:
    """Moves the sequence into the next segment when the current one is due to close, then
    attaches the one after, ahead, for the next time.

    The next segment was attached ahead, committed, but a statement that started before
    that can still be handing out change_ids, and could not write into it: the log's SHARE
    lock waits every writer out (a short wait at a time, so writers queue behind it no
    longer than that) before the sequence moves."""
    with as_loader(finance) as cur:
        cur.execute("select cdc.open_segment(cdc.current_segment() + 1)")
    with as_loader(finance) as cur:
        cur.execute(
            "select cdc.segment_due_to_close(make_interval(secs => %s))", (retention_seconds,)
        )
        if not cur.fetchone()[0]:
            return
        cur.execute("select cdc.wait_for_log_writers()")
        cur.execute(
            "select cdc.advance_change_ids((cdc.current_segment() + 1) * cdc.segment_width())"
        )
    with as_loader(finance) as cur:
        cur.execute("select cdc.open_segment(cdc.current_segment() + 1)")


def wait_for_readers(finance) -> None:
    """Waits, without queueing for any lock, while another session reads the log (a loader
    paging through a backlog): a drop waiting on it would hold every writer behind it."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline:
        with finance, finance.cursor() as cur:
            cur.execute(
                "select exists (select from pg_locks where relation = 'cdc.change_log'::regclass "
                "and mode = 'AccessShareLock' and granted and pid <> pg_backend_pid())"
            )
            if not cur.fetchone()[0]:
                return
        time.sleep(0.1)


def drop_landed_segments(
    finance, watermark: Watermark, retention_seconds: float
) -> list[tuple[int, int, int]]:
    with as_loader(finance) as cur:
        cur.execute(
            "select segment, last_txid::text::bigint, last_change_id "
            "from cdc.drop_landed_segments(%s::text::xid8, %s, make_interval(secs => %s))",
            (watermark.last_txid, watermark.last_change_id, retention_seconds),
        )
        return cur.fetchall()
