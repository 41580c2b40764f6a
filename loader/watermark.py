"""The loader's watermark in analytics_db: the (txid, change_id) cursor of the last change
landed, and the identity of the source server whose transaction ids it counts."""

from __future__ import annotations

from dataclasses import dataclass

from connections.errors import SourceReplaced


@dataclass(frozen=True)
class Watermark:
    source_system_identifier: str
    last_txid: int
    last_change_id: int


def read_watermark(cur) -> Watermark | None:
    cur.execute(
        "select source_system_identifier, last_txid, last_change_id from staging.load_state"
    )
    row = cur.fetchone()
    return Watermark(*row) if row else None


def write_watermark(cur, watermark: Watermark) -> None:
    cur.execute(
        """
        insert into staging.load_state as s
            (source_system_identifier, last_txid, last_change_id, updated_at)
        values (%s, %s, %s, now())
        on conflict (singleton) do update set
            source_system_identifier = excluded.source_system_identifier,
            last_txid = excluded.last_txid,
            last_change_id = excluded.last_change_id,
            updated_at = excluded.updated_at
        """,
        (watermark.source_system_identifier, watermark.last_txid, watermark.last_change_id),
    )


def check_same_source(watermark: Watermark | None, source_system_identifier: str) -> None:
    """Transaction ids belong to one server: after a restore into a new server they start
    again below the stored cursor, and comparing them would skip changes."""
    if watermark and watermark.source_system_identifier != source_system_identifier:
        raise SourceReplaced(
            "finance_db is not the server the watermark was taken from (system identifier "
            f"{source_system_identifier}, watermark from {watermark.source_system_identifier}):"
            " its transaction ids cannot be compared with the watermark, so nothing was "
            "loaded; re-snapshot the source with `acme pipeline resync`"
        )
