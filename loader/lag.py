"""How far the warehouse is behind: committed changes in the source's log not yet landed."""

from __future__ import annotations

from loader.watermark import NOT_LANDED, Watermark, not_landed_parameters


def unloaded_changes(source_cur, watermark: Watermark | None) -> tuple[int, float]:
    """The changes above the watermark (and its resync floor), and the oldest one's age."""
    source_cur.execute(
        "select count(*), coalesce(extract(epoch from now() - min(changed_at)), 0)::float "
        f"from cdc.change_log where {NOT_LANDED}",
        not_landed_parameters(watermark),
    )
    count, oldest_seconds = source_cur.fetchone()
    return count, round(oldest_seconds, 3)
