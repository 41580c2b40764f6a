"""`acme capture prune`: drops from the source's change log the segments the warehouse has
landed.

The log is partitioned into segments of change_ids (sql/triggers/change_log.sql). Prune
closes the current segment once it holds changes older than the retention, by moving the
change_id sequence into a new one, and drops each closed segment whose every change is at or
below the warehouse's watermark and which was closed longer ago than the retention: a DROP of
a partition, not a DELETE, so it leaves no dead rows for vacuum. The staged history in
analytics_db keeps every change. cdc.prune_state records how far the log was pruned, so a
warehouse later restored to an older watermark is told, not misled.
"""

from __future__ import annotations

from dataclasses import dataclass

from connections.connect import connected
from connections.errors import PipelineError
from connections.locks import PRUNE_LOCK_KEY
from connections.settings import ANALYTICS, FINANCE
from loader.capture import require_installed
from loader.locking import retry_on_lock_conflict, set_short_lock_wait
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
        with finance, finance.cursor() as cur:
            require_installed(cur)
            cur.execute("select pg_try_advisory_lock(%s)", (PRUNE_LOCK_KEY,))
            if not cur.fetchone()[0]:
                raise PipelineError(
                    "another `acme capture prune` is running on finance_db: let it finish"
                )
            check_same_source(watermark, source_identity(cur))
        next_segment = retry_on_lock_conflict(
            lambda: open_next_segment(finance, retention_seconds), "capture prune"
        )
        if next_segment is not None:
            with finance, finance.cursor() as cur:
                cur.execute("set local role acme_loader")
                cur.execute(
                    "select cdc.advance_change_ids(%s * cdc.segment_width())", (next_segment,)
                )
        dropped = retry_on_lock_conflict(
            lambda: drop_landed_segments(finance, watermark, retention_seconds), "capture prune"
        )
        with finance, finance.cursor() as cur:
            cur.execute("select count(*) from cdc.log_segments")
            kept = cur.fetchone()[0]
    through = max(((txid, change_id) for _segment, txid, change_id in dropped), default=None)
    return PruneResult(len(dropped), through[1] if through else None, kept)


def open_next_segment(finance, retention_seconds: float) -> int | None:
    """Attaches the next segment's partition (committed before the sequence moves into it)
    when the current segment is due to close."""
    with finance, finance.cursor() as cur:
        cur.execute("set local role acme_loader")
        set_short_lock_wait(cur)
        cur.execute("select cdc.open_next_segment(make_interval(secs => %s))", (retention_seconds,))
        return cur.fetchone()[0]


def drop_landed_segments(
    finance, watermark: Watermark, retention_seconds: float
) -> list[tuple[int, int, int]]:
    with finance, finance.cursor() as cur:
        cur.execute("set local role acme_loader")
        set_short_lock_wait(cur)
        cur.execute(
            "select segment, last_txid::text::bigint, last_change_id from cdc.drop_landed_segments("
            "%s::text::xid8, %s, make_interval(secs => %s))",
            (watermark.last_txid, watermark.last_change_id, retention_seconds),
        )
        return cur.fetchall()
