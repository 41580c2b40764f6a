"""Whether an --as-of moment can be answered: after capture started, after finance_db tracked
commit times, and before the moment the history models are built through
(pipeline/moments.py)."""

from __future__ import annotations

from datetime import datetime

from connections.errors import ExportError
from pipeline.marts import MARTS
from pipeline.moments import HISTORY_MODELS, built_through, utc

# When capture of each captured table started, as far as the history knows: the time of its
# first staged TRUNCATE at or above the resync floor (capture of a table, and a resync, start
# with one, before the snapshot of its rows), found in the partial index on truncates. Before
# it, the history holds nothing of the table: a table captured later would read as empty.
CAPTURE_STARTED = """
    select
        format('%%I.%%I', tables.table_schema, tables.table_name),
        (
            select coalesce(marker.committed_at, marker.changed_at)
            from staging.change_log as marker
            where
                marker.table_schema = tables.table_schema
                and marker.table_name = tables.table_name
                and marker.operation = 'TRUNCATE'
                and marker.change_id >= (select staging.decoded_change_id_floor())
            order by marker.change_id
            limit 1
        ) as started_at
    from unnest(%s::text[], %s::text[]) as tables (table_schema, table_name)
    order by started_at desc nulls first
    limit 1
"""


# From when the history's times are commit times: the commit time of the first change with
# one staged after the last change staged without (both at or above the resync floor), or
# null when there is none. finance_db starts tracking commit times only at a restart, so
# every change without one committed before any change after it with one; before that
# moment the history dates versions by statement time, which can place a change before a
# moment its transaction committed after. No row at all: every change has a commit time.
TRACKED_SINCE = """
    with last_untracked as (
        select max(change_id) as change_id
        from staging.change_log
        where
            committed_at is null
            and change_id >= (select staging.decoded_change_id_floor())
    )
    select
        last_untracked.change_id is not null,
        (
            select tracked.committed_at
            from staging.change_log as tracked
            where tracked.change_id > last_untracked.change_id and tracked.committed_at is not null
            order by tracked.change_id
            limit 1
        )
    from last_untracked
"""


def check_as_of(cur, moment: datetime) -> None:
    """Raises ExportError, naming what to do, unless the history can answer `moment`."""
    history = built_through(cur, HISTORY_MODELS)
    if history is None:
        raise ExportError("the history models are not built yet: run `acme pipeline run` first")
    if history.complete_through is None:
        raise ExportError(
            "no load has recorded a moment the warehouse is complete up to: --as-of needs "
            "commit times (track_commit_timestamp = on on finance_db, then a restart); where "
            "it is on, run `acme pipeline run` once"
        )
    if moment >= history.complete_through:
        raise ExportError(
            f"the history is complete up to {utc(history.complete_through)}: ask for an "
            "earlier moment, or run `acme pipeline run` to load and build what committed since"
        )
    sources = [mart.source for mart in MARTS]
    cur.execute(CAPTURE_STARTED, ([s for s, _ in sources], [t for _, t in sources]))
    table, started = cur.fetchone()
    if started is None or moment < started:
        raise ExportError(
            f"capture started at {utc(started) if started else 'no moment yet'} for {table} "
            "(the last table captured): the history holds nothing of it before; ask for a "
            "later moment"
        )
    cur.execute(TRACKED_SINCE)
    untracked, tracked_since = cur.fetchone()
    if untracked and (tracked_since is None or moment < tracked_since):
        since = utc(tracked_since) if tracked_since else "a change not loaded yet"
        raise ExportError(
            f"finance_db tracked commit times only from {since}: the history dates the "
            "changes before it by the time their statements ran, which cannot place them "
            "exactly; ask for a later moment"
        )
