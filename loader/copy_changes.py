"""Copies committed changes from finance_db's cdc.change_log into analytics_db's
staging.change_log: exactly once, in (txid, change_id) order, never skipping a late commit.

The horizon h = pg_snapshot_xmin(pg_current_snapshot()) of a REPEATABLE READ transaction on
the source: every transaction with txid < h has ended, so the set of log rows with txid < h
can no longer change. The loader pages through that set after its (txid, change_id) cursor,
and commits each page with the new cursor in one analytics transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg2 import errors
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ

from connections.connect import connected
from connections.errors import LoaderBusy, PipelineError
from connections.locks import LOADER_LOCK_KEY
from connections.settings import ANALYTICS, FINANCE
from loader.capture import require_capture_whole, require_installed, schema_changes_captured
from loader.page_stream import stream_copy
from loader.schema_contract import check_live_schema, check_pending_schema_events
from loader.staging import ensure_staging
from loader.watermark import (
    LANDABLE,
    NOT_LANDED,
    Watermark,
    check_not_rewound,
    check_nothing_pruned_past,
    check_same_source,
    not_landed_parameters,
    read_watermark,
    source_fence,
    source_identity,
    write_fence,
    write_watermark,
)

DEFAULT_BATCH_SIZE = 50_000
# One loader at a time: load ids must commit in the order they are handed out.

STAGED_COLUMNS = (
    "change_id, txid, changed_at, committed_at, table_schema, table_name, operation, "
    "primary_key, old_row, new_row, load_id"
)

# A null limit is no limit. The commit time is asked for only where the source tracks it:
# pg_xact_commit_timestamp() raises an error where track_commit_timestamp is off, and gives
# null for a transaction that committed before it was turned on. A landable change's
# transaction has committed, recently enough that its 32-bit xid is unambiguous.
PAGE_SELECT = f"""
    select change_id, txid::text::bigint, changed_at,
           case
               when current_setting('track_commit_timestamp')::boolean
                   then pg_xact_commit_timestamp(txid::xid)
           end,
           table_schema, table_name, operation, primary_key, old_row, new_row,
           %(load_id)s::bigint
    from cdc.change_log
    where {LANDABLE}
    -- the table's columns, not the bigint txid of the select list: the index's order
    order by change_log.txid, change_log.change_id
    limit %(limit)s
"""

# The moment the warehouse is complete up to once this load has landed: every change that
# committed before it is staged. No later than the load's snapshot (transaction_timestamp()
# precedes it); nor than the commit of any change not landed, read in a snapshot taken after
# the load (one beyond the horizon, past a --max-batches stop, or of a transaction the load's
# snapshot saw running); nor than the commit time a transaction still in progress has
# already recorded: PostgreSQL records it before the commit is flushed (and, with
# synchronous replication, acknowledged) and only then makes the transaction visible, so a
# snapshot taken in between neither sees it nor lists it as running. Dated as the history
# dates versions: commit time, or statement time for a change committed before commit times
# were tracked. None where the source does not track commit times: no moment can be claimed.
LOAD_STARTED = "select transaction_timestamp(), current_setting('track_commit_timestamp')::boolean"
# Every transaction in progress holds the lock on its own xid.
IN_FLIGHT_COMMIT = """
    select min(pg_xact_commit_timestamp(transactionid))
    from pg_locks
    where locktype = 'transactionid' and mode = 'ExclusiveLock' and granted
"""
UNLANDED_COMMIT = f"""
    select min(coalesce(pg_xact_commit_timestamp(txid::xid), changed_at))
    from cdc.change_log
    where {NOT_LANDED}
"""

# Ordered by the table's columns too: "order by txid" would name the select list's bigint,
# which no index holds, and sort the whole backlog on every page (0.15 s a page at 1M).
NEXT_TXID = f"""
    select txid::text::bigint from cdc.change_log
    where {LANDABLE}
    order by change_log.txid, change_log.change_id
    limit 1
"""


@dataclass(frozen=True)
class LandedPage:
    """One page committed to staging: the watermark after it, its load, its size."""

    watermark: Watermark
    load_id: int
    changes: int


@dataclass
class LoadResult:
    changes: int = 0
    batches: int = 0
    horizon_txid: int = 0
    seconds: float = 0.0
    load_ids: list[int] = field(default_factory=list)

    def add(self, page: LandedPage) -> Watermark:
        self.changes += page.changes
        self.batches += 1
        self.load_ids.append(page.load_id)
        return page.watermark

    @property
    def changes_per_second(self) -> float:
        return self.changes / self.seconds if self.seconds > 0 else 0.0


def load_changes(
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    progress: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Lands every committed change below the horizon, or the first max_batches pages and
    the rest of the transaction the last of them ends in."""
    started = time.monotonic()
    with (
        connected(ANALYTICS, application_name="acme loader") as target,
        connected(FINANCE, application_name="acme loader") as source,
    ):
        # The lock first: concurrent first loads would race to create the staging tables.
        hold_loader_lock(target)
        ensure_staging(target)
        source.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        with source.cursor() as src:
            require_installed(src)
            src.execute("set role acme_loader")
            prefer_ordered_scan(src)
            horizon = snapshot_horizon(src)
            src.execute(LOAD_STARTED)
            load_started, tracked = src.fetchone()
            identity = source_identity(src)
            result = LoadResult(horizon_txid=horizon)
            with target.cursor() as dst:
                watermark = read_watermark(dst)
            check_same_source(watermark, identity)
            watermark = watermark or Watermark(identity, 0, 0)
            check_nothing_pruned_past(watermark, src)
            fence = source_fence(src)
            check_not_rewound(watermark, fence)
            require_capture_whole(src)
            check_schema(src, watermark, horizon)
            if next_txid(src, watermark, horizon) is not None:
                watermark = fence_this_load(watermark, max(fence, watermark.load_fence) + 1)
            while True:
                landed = copy_page(src, target, watermark, horizon, batch_size)
                if landed is None:
                    break
                watermark = result.add(landed)
                if progress:
                    progress(result)
                if landed.changes < batch_size:
                    break
                if result.batches == max_batches:
                    # Stop on a transaction boundary, so no build sees half a transaction:
                    # land the rest of the last one, all below the horizon of its txid + 1.
                    rest = copy_page(src, target, watermark, watermark.last_txid + 1, None)
                    if rest is not None:
                        watermark = result.add(rest)
                    break
            source.rollback()
            moment = complete_through(source, watermark, load_started) if tracked else None
            with target, target.cursor() as dst:
                if result.batches == 0:
                    write_watermark(dst, watermark)
                record_complete_through(dst, moment, result.load_ids)
            refresh_statistics(target, result.changes)
    result.seconds = time.monotonic() - started
    return result


def complete_through(source, watermark: Watermark, load_started):
    """The moment the staged changes are complete up to (LOAD_STARTED, above), read after
    the load's own snapshot is released: the transactions in progress first, then, in a
    snapshot taken after that, the changes not landed, so a transaction that ends in between
    is seen by the second read."""
    with source, source.cursor() as cur:
        cur.execute(IN_FLIGHT_COMMIT)
        (in_flight,) = cur.fetchone()
    with source, source.cursor() as cur:
        cur.execute(UNLANDED_COMMIT, not_landed_parameters(watermark))
        (unlanded,) = cur.fetchone()
    return min(moment for moment in (load_started, in_flight, unlanded) if moment is not None)


def record_complete_through(dst, moment, load_ids: list[int]) -> None:
    """The moment (complete_through()) on the watermark, and on this load's last batch: a build
    that applied through that batch is complete up to it. Written after the pages commit, so
    a crash in between leaves the older moment, which still holds."""
    dst.execute("update staging.load_state set complete_through = %s", (moment,))
    if load_ids:
        dst.execute(
            "update staging.load_batches set complete_through = %s where load_id = %s",
            (moment, load_ids[-1]),
        )


def snapshot_horizon(src) -> int:
    """The horizon of the cursor's current snapshot (see above): every txid below it has
    ended."""
    src.execute("select pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    return src.fetchone()[0]


def check_schema(src, watermark: Watermark, horizon: int) -> None:
    """The source's columns must still fit the models: checked on the SCHEMA changes about to
    land, or, where DDL is not captured, on the catalog as it is now."""
    if schema_changes_captured(src):
        check_pending_schema_events(src, watermark, horizon)
    else:
        check_live_schema(src)


def fence_this_load(watermark: Watermark, fence: int) -> Watermark:
    """Commits a new load fence on finance_db, after this load's snapshot was taken and
    before any of it lands (loader/watermark.py, check_not_rewound); the watermark carries
    it into the warehouse with each batch."""
    with connected(FINANCE, application_name="acme loader fence") as fence_conn:
        write_fence(fence_conn, fence)
    return watermark.fenced(fence)


def prefer_ordered_scan(src) -> None:
    """Pages read the change-log index in order, whatever the statistics say.

    Right after a burst, before autovacuum has analyzed cdc.change_log, the planner guesses
    a page matches a few percent of the log and sorts the whole backlog for every page (a
    parallel bitmap scan and an on-disk sort: 3.2 s a page instead of 0.05 s on a 1.8M-row
    log). Forbidding the sort leaves the index scan, which stops after `limit` rows."""
    src.execute("set enable_sort = off")


def copy_page(
    src, target, watermark: Watermark, horizon: int, limit: int | None
) -> LandedPage | None:
    """Lands one page (limit None: all of it), or nothing and None when there is none."""
    with target, target.cursor() as dst:
        dst.execute("select nextval(pg_get_serial_sequence('staging.load_batches', 'load_id'))")
        load_id = dst.fetchone()[0]
        try:
            page = stream_copy(
                src,
                # COPY takes no parameters: they are bound client-side.
                "copy ({}) to stdout".format(
                    src.mogrify(
                        PAGE_SELECT,
                        not_landed_parameters(
                            watermark, load_id=load_id, horizon=horizon, limit=limit
                        ),
                    ).decode()
                ),
                dst,
                f"copy staging.change_log ({STAGED_COLUMNS}) from stdin",
            )
        except errors.UniqueViolation as exc:
            raise PipelineError(
                "a change in this batch is already staged, so the watermark is behind "
                "staging.change_log; nothing was loaded twice. Check staging.load_state "
                f"({exc.diag.message_detail})"
            ) from exc
        if page.first_row is None or page.last_row is None:
            target.rollback()
            return None
        first = page.first_row.split(b"\t", 1)[0]
        last_change_id, last_txid = page.last_row.split(b"\t", 2)[:2]
        new_watermark = watermark.advanced_to(int(last_txid), int(last_change_id))
        ends_transaction = (
            limit is None
            or page.rows < limit
            or next_txid(src, new_watermark, horizon) != int(last_txid)
        )
        dst.execute(
            "insert into staging.load_batches (load_id, change_count, first_change_id, "
            "last_change_id, horizon_txid, ends_transaction) overriding system value "
            "values (%s, %s, %s, %s, %s, %s)",
            (load_id, page.rows, int(first), int(last_change_id), horizon, ends_transaction),
        )
        write_watermark(dst, new_watermark)
    return LandedPage(new_watermark, load_id, page.rows)


def next_txid(src, watermark: Watermark, horizon: int) -> int | None:
    """The txid of the next change to land after the watermark, or None: a full page whose
    next change has another txid ended its transaction."""
    src.execute(NEXT_TXID, not_landed_parameters(watermark, horizon=horizon))
    row = src.fetchone()
    return row[0] if row else None


def refresh_statistics(target, landed: int) -> None:
    """ANALYZE what the next build plans with, when its statistics are missing or stale.

    staging.change_log after a load that grew it by a tenth or more: the next build's plans
    must see the new rows now, not when autovacuum next gets round to it. And any table of
    staging or analytics that holds rows but has no column statistics at all: a restore (or
    a table just created) leaves none, and reltuples, which the index builds set, hides it;
    without them the incremental build was seen scanning the whole staged history once for
    each affected key (22 minutes instead of 10 s)."""
    with target, target.cursor() as dst:
        dst.execute("select reltuples from pg_class where oid = 'staging.change_log'::regclass")
        (estimated_rows,) = dst.fetchone()
        stale = (
            {"staging.change_log"} if landed and landed >= 0.1 * max(estimated_rows, 0) else set()
        )
        dst.execute(
            """
            select format('%I.%I', n.nspname, c.relname)
            from pg_class as c
            inner join pg_namespace as n on c.relnamespace = n.oid
            where
                n.nspname in ('staging', 'analytics')
                and c.relkind = 'r'
                and c.reltuples <> 0
                and not exists (
                    select from pg_stats as s
                    where s.schemaname = n.nspname and s.tablename = c.relname
                )
            """
        )
        for table in sorted(stale | {row[0] for row in dst.fetchall()}):
            dst.execute(f"analyze {table}")


def hold_loader_lock(target) -> None:
    """A session lock on analytics_db, released when the loader's connection closes."""
    with target, target.cursor() as dst:
        dst.execute("select pg_try_advisory_lock(%s)", (LOADER_LOCK_KEY,))
        if not dst.fetchone()[0]:
            raise LoaderBusy(
                "another loader is running against analytics_db (for example "
                "`acme pipeline run --follow`): let it finish or stop it, then try again"
            )
