"""`acme pipeline resync`: re-snapshots every captured table, for when the change log cannot
bring the warehouse up to date: changes since its watermark were pruned, or finance_db was
restored into a new server whose transaction ids cannot be compared with the watermark, or
restored in place to an earlier moment (the load fence went back), or a schema change or a
capture gap the warehouse cannot build across.

On the source, in one transaction with writers locked out: the change sequence is moved
above every change_id already staged (a restored server's sequence may be behind), and each
table gets a TRUNCATE and one SNAPSHOT change per row. The watermark then takes the source's
identity and a change_id floor, the snapshot's first change: anything below it is
superseded by the snapshot and is never landed, nor read by the models if already staged.
The watermark's cursor starts again from the beginning of the log: a source restored to an
earlier point in time hands out transaction ids below the old cursor, and the floor keeps
everything older out. A new load fence is committed with the snapshot. The next `acme
pipeline run` converges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg2 import sql

from connections.connect import connected
from connections.errors import PipelineError
from connections.locks import PRUNE_LOCK_KEY
from connections.settings import ANALYTICS, FINANCE
from loader.capture import require_installed
from loader.copy_changes import hold_loader_lock
from loader.locking import retry_on_lock_conflict, set_short_lock_wait
from loader.staging import ensure_staging
from loader.watermark import (
    Watermark,
    read_watermark,
    source_fence,
    source_identity,
    store_fence,
    write_watermark,
)


@dataclass(frozen=True)
class ResyncResult:
    snapshotted: dict[str, int]
    change_id_floor: int
    source_changed: bool


def resync() -> ResyncResult:
    with (
        connected(ANALYTICS, application_name="acme pipeline resync") as analytics,
        connected(FINANCE, application_name="acme pipeline resync") as finance,
    ):
        hold_loader_lock(analytics)
        ensure_staging(analytics)
        with analytics, analytics.cursor() as cur:
            watermark = read_watermark(cur)
            cur.execute("select coalesce(max(change_id), 0) from staging.change_log")
            highest_staged = cur.fetchone()[0]
        landed_fence = watermark.load_fence if watermark else 0

        def commit_watermark(identity: str, floor: int, fence: int) -> None:
            # Committed before finance_db's side: should that commit fail, the warehouse
            # holds a fence finance_db does not, so the loader refuses until resync is run
            # again, instead of paging on from the old cursor.
            with analytics, analytics.cursor() as cur:
                write_watermark(cur, Watermark(identity, 0, 0, floor, fence))

        open_segment_above(finance, highest_staged)
        snapshotted, floor, identity = retry_on_lock_conflict(
            lambda: snapshot_source(finance, highest_staged, landed_fence, commit_watermark),
            "resync",
        )
        source_changed = watermark is None or watermark.source_system_identifier != identity
    return ResyncResult(snapshotted, floor, source_changed)


def open_segment_above(finance, highest_staged: int) -> None:
    """Attaches the change-log segment holding the change_id after highest_staged, and the
    one after it, when the sequence is below it (a restored server's may be), committed
    before the snapshot moves the sequence there: a write whose change_id has no partition
    would fail. After any prune running now, which attaches segments too."""
    with finance, finance.cursor() as cur:
        require_installed(cur)
        cur.execute("select pg_advisory_xact_lock(%s)", (PRUNE_LOCK_KEY,))
        cur.execute(
            "select cdc.open_segment(segment), cdc.open_segment(segment + 1) from "
            "(select greatest(%s, cdc.next_change_id()) / cdc.segment_width() as segment) as s",
            (highest_staged + 1,),
        )


def snapshot_source(
    finance,
    highest_staged: int,
    landed_fence: int,
    commit_watermark: Callable[[str, int, int], None],
) -> tuple[dict[str, int], int, str]:
    with finance, finance.cursor() as cur:
        set_short_lock_wait(cur)
        cur.execute("select table_schema, table_name from cdc.captured_tables order by 1, 2")
        tables = cur.fetchall()
        if not tables:
            raise PipelineError("no table is captured on finance_db: run `acme capture install`")
        for table in tables:
            cur.execute(sql.SQL("lock table {} in share mode").format(sql.Identifier(*table)))
        # Above every staged change_id, so the snapshot outranks all the warehouse holds;
        # the first snapshot change is then the next number: the floor.
        cur.execute("select cdc.advance_change_ids(%s)", (highest_staged + 1,))
        floor = cur.fetchone()[0]
        snapshotted = {}
        for schema, name in tables:
            cur.execute(
                "select cdc.snapshot_table(format('%%I.%%I', %s, %s)::regclass)",
                (schema, name),
            )
            snapshotted[f"{schema}.{name}"] = cur.fetchone()[0]
        identity = source_identity(cur)
        fence = max(source_fence(cur), landed_fence) + 1
        store_fence(cur, fence)
        commit_watermark(identity, floor, fence)
    return snapshotted, floor, identity
