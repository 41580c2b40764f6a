"""How far the warehouse is behind: committed changes in the source's log not yet landed."""

from __future__ import annotations

from loader.watermark import Watermark


def unloaded_changes(source_cur, watermark: Watermark | None) -> tuple[int, float]:
    """The changes above the watermark (and its resync floor), and the oldest one's age."""
    watermark = watermark or Watermark("", 0, 0)
    source_cur.execute(
        "select count(*), coalesce(extract(epoch from now() - min(changed_at)), 0)::float "
        "from cdc.change_log where (txid, change_id) > (%s::text::xid8, %s) "
        "and change_id >= %s",
        (watermark.last_txid, watermark.last_change_id, watermark.change_id_floor),
    )
    count, oldest_seconds = source_cur.fetchone()
    return count, round(oldest_seconds, 3)
