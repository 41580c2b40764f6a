"""The loader's watermark in analytics_db: the (txid, change_id) cursor of the last change
landed, the identity of the source it counts in (server and change log), the change_id
floor below which changes are superseded by a resync's snapshot, and the load fence the
landed changes were read under (see check_not_rewound)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from connections.errors import ChangesPruned, SourceReplaced, SourceRewound


@dataclass(frozen=True)
class Watermark:
    source_system_identifier: str
    last_txid: int
    last_change_id: int
    change_id_floor: int = 0
    load_fence: int = 0

    def advanced_to(self, txid: int, change_id: int) -> Watermark:
        return replace(self, last_txid=txid, last_change_id=change_id)

    def fenced(self, load_fence: int) -> Watermark:
        return replace(self, load_fence=load_fence)


# The changes still to land, in cdc.change_log: after the watermark's (txid, change_id), the
# order they land in, and not below the resync floor. Every reader of what is still to land
# (the pages, the next txid, the lag, the pending schema changes) uses this one predicate,
# with the parameters of not_landed_parameters(). LANDABLE bounds it by a horizon, for the
# loader's own reads; the lag counts beyond the horizon too.
NOT_LANDED = (
    "(txid, change_id) > (%(last_txid)s::text::xid8, %(last_change_id)s::bigint) "
    "and change_id >= %(change_id_floor)s::bigint"
)
LANDABLE = f"{NOT_LANDED} and txid < %(horizon)s::text::xid8"


def not_landed_parameters(watermark: Watermark | None, **more: int | None) -> dict:
    """NOT_LANDED's parameters (all of the log without a watermark), and the caller's own."""
    watermark = watermark or Watermark("", 0, 0)
    return {
        "last_txid": watermark.last_txid,
        "last_change_id": watermark.last_change_id,
        "change_id_floor": watermark.change_id_floor,
        **more,
    }


def read_watermark(cur) -> Watermark | None:
    """The watermark, or None when nothing was loaded yet (no staging tables either)."""
    cur.execute("select to_regclass('staging.load_state') is not null")
    if not cur.fetchone()[0]:
        return None
    cur.execute(
        "select source_system_identifier, last_txid, last_change_id, change_id_floor, "
        "load_fence from staging.load_state"
    )
    row = cur.fetchone()
    return Watermark(*row) if row else None


def write_watermark(cur, watermark: Watermark) -> None:
    cur.execute(
        """
        insert into staging.load_state as s
            (source_system_identifier, last_txid, last_change_id, change_id_floor, load_fence,
             updated_at)
        values (%s, %s, %s, %s, %s, now())
        on conflict (singleton) do update set
            source_system_identifier = excluded.source_system_identifier,
            last_txid = excluded.last_txid,
            last_change_id = excluded.last_change_id,
            change_id_floor = excluded.change_id_floor,
            load_fence = excluded.load_fence,
            updated_at = excluded.updated_at
        """,
        (
            watermark.source_system_identifier,
            watermark.last_txid,
            watermark.last_change_id,
            watermark.change_id_floor,
            watermark.load_fence,
        ),
    )


def source_identity(source_cur) -> str:
    """The server (its system identifier) and the change log (its id) the cursor counts in.

    Transaction ids belong to one server, and change_ids to one change log: after a restore
    into a new server, or a log dropped and installed again, they start again below the
    stored cursor, and comparing them with it would skip or collide."""
    source_cur.execute(
        "select system_identifier::text || '/' || (select log_id::text from cdc.log_identity)"
        " from pg_control_system()"
    )
    return source_cur.fetchone()[0]


def check_same_source(watermark: Watermark | None, identity: str) -> None:
    if watermark and watermark.source_system_identifier != identity:
        raise SourceReplaced(
            "finance_db is not the server and change log the watermark was taken from "
            f"({identity}, watermark from {watermark.source_system_identifier}): restored "
            "into a new server, or capture was installed afresh. Nothing was loaded; "
            "re-snapshot the source with `acme pipeline resync`"
        )


def check_nothing_pruned_past(watermark: Watermark, source_cur) -> None:
    """Pruning removes only changes the warehouse had landed. A watermark below what was
    pruned (the warehouse was restored from an older backup) means changes are gone."""
    source_cur.execute(
        "select pruned_through_txid::text::bigint, pruned_through_change_id from cdc.prune_state"
    )
    pruned = source_cur.fetchone()
    if pruned is None:
        return
    pruned_txid, pruned_change_id = pruned
    behind = (pruned_txid, pruned_change_id) > (watermark.last_txid, watermark.last_change_id)
    if behind and pruned_change_id >= watermark.change_id_floor:
        raise ChangesPruned(
            f"the change log was pruned through change {pruned_change_id}, past the "
            f"warehouse's watermark (change {watermark.last_change_id}): the changes between "
            "are gone (was analytics_db restored from an older backup?), so nothing was "
            "loaded; re-snapshot the source with `acme pipeline resync`"
        )


def source_fence(source_cur) -> int:
    """The newest load fence finance_db holds (0 before the first load)."""
    source_cur.execute("select coalesce(max(fence), 0) from cdc.load_fence")
    return source_cur.fetchone()[0]


def check_not_rewound(watermark: Watermark, fence: int) -> None:
    """A fence is committed on finance_db after the loader has read its snapshot and before
    the warehouse commits what it read, so finance_db always holds the fence of every landed
    load. A lower one means finance_db was restored to a moment before a load the warehouse
    holds: the changes since are undone there, and change_ids may be handed out again."""
    if fence < watermark.load_fence:
        raise SourceRewound(
            f"finance_db has gone back in time: it holds load fence {fence}, but the warehouse "
            f"landed changes under fence {watermark.load_fence} (finance_db was restored from "
            "a backup or to an earlier point in time). Nothing was loaded; re-snapshot the "
            "source with `acme pipeline resync`"
        )


def write_fence(fence_conn, fence: int) -> None:
    """Commits the new fence on finance_db (a connection of its own, as the loader role)."""
    with fence_conn, fence_conn.cursor() as cur:
        cur.execute("set local role acme_loader")
        store_fence(cur, fence)


def store_fence(source_cur, fence: int) -> None:
    """Sets finance_db's load fence, in the caller's transaction."""
    source_cur.execute(
        "insert into cdc.load_fence (fence) values (%s) on conflict (singleton) "
        "do update set fence = excluded.fence, fenced_at = now()",
        (fence,),
    )
