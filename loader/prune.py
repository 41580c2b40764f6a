"""`acme capture prune`: removes from the source's change log what the warehouse has landed.

Only changes at or below the warehouse's watermark, and older than the retention period, are
removed; the staged history in analytics_db keeps them. cdc.prune_state records how far the
log was pruned, so a warehouse later restored to an older watermark is told, not misled.
"""

from __future__ import annotations

from dataclasses import dataclass

from connections.connect import connected
from connections.errors import PipelineError
from connections.settings import ANALYTICS, FINANCE
from loader.capture import require_installed
from loader.watermark import check_same_source, read_watermark, source_identity

PRUNE = """
with pruned as (
    delete from cdc.change_log
    where (txid, change_id) <= (%(txid)s::text::xid8, %(change_id)s::bigint)
      and changed_at < now() - make_interval(secs => %(retention)s)
    returning txid, change_id
),

last_pruned as (
    select txid, change_id from pruned order by txid desc, change_id desc limit 1
),

recorded as (
    insert into cdc.prune_state as s (pruned_through_txid, pruned_through_change_id)
    select txid, change_id from last_pruned
    on conflict (singleton) do update set
        pruned_through_txid = excluded.pruned_through_txid,
        pruned_through_change_id = excluded.pruned_through_change_id,
        pruned_at = now()
    where (excluded.pruned_through_txid, excluded.pruned_through_change_id)
        > (s.pruned_through_txid, s.pruned_through_change_id)
)

select (select count(*) from pruned), (select change_id from last_pruned)
"""


@dataclass(frozen=True)
class PruneResult:
    pruned: int
    through_change_id: int | None
    kept: int


def prune(retention_seconds: float) -> PruneResult:
    with (
        connected(ANALYTICS, application_name="acme capture prune") as analytics,
        connected(FINANCE, application_name="acme capture prune") as finance,
    ):
        with analytics, analytics.cursor() as cur:
            watermark = read_watermark(cur)
        if watermark is None:
            raise PipelineError(
                "nothing has been loaded into analytics_db yet, so no change can be pruned: "
                "run `acme pipeline run` first"
            )
        with finance, finance.cursor() as cur:
            require_installed(cur)
            cur.execute("set local role acme_loader")
            check_same_source(watermark, source_identity(cur))
            cur.execute(
                PRUNE,
                {
                    "txid": watermark.last_txid,
                    "change_id": watermark.last_change_id,
                    "retention": retention_seconds,
                },
            )
            pruned, through = cur.fetchone()
            cur.execute("select count(*) from cdc.change_log")
            kept = cur.fetchone()[0]
    return PruneResult(pruned, through, kept)
