"""How far behind the warehouse is, measured once per follow cycle for the log and metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg2

from connections.connect import connected
from connections.errors import AcmeError
from connections.settings import ANALYTICS, FINANCE
from loader.lag import unloaded_changes
from loader.status import oldest_open_transaction
from loader.watermark import Watermark, read_watermark

log = logging.getLogger("acme.monitoring")


@dataclass(frozen=True)
class Lag:
    changes: int
    seconds: float
    # 0 when no transaction is open: the metric must keep a value an alert can compare.
    oldest_transaction_seconds: float


class LagProbe:
    """The lag as `acme pipeline status` computes it, without its table counts.

    A database that cannot be reached keeps the last measurement rather than stopping the
    follow loop; with only analytics_db down the last watermark read still counts the lag
    right, since nothing can advance it while the loader cannot reach analytics_db."""

    def __init__(self) -> None:
        self.watermark: Watermark | None = None
        self.watermark_read = False
        self.last: Lag | None = None

    def measure(self) -> Lag | None:
        try:
            self.watermark, self.watermark_read = self.read_watermark(), True
        except (AcmeError, psycopg2.Error) as exc:
            log.debug("lag: keeping the last watermark (%s)", exc)
            if not self.watermark_read:
                # No watermark would count every change in the log as lag.
                return self.last
        try:
            self.last = self.read_lag(self.watermark)
        except (AcmeError, psycopg2.Error) as exc:
            log.debug("lag: keeping the last measurement (%s)", exc)
        return self.last

    @staticmethod
    def read_watermark() -> Watermark | None:
        with (
            connected(ANALYTICS, application_name="acme monitoring") as conn,
            conn,
            conn.cursor() as cur,
        ):
            return read_watermark(cur)

    @staticmethod
    def read_lag(watermark: Watermark | None) -> Lag:
        with (
            connected(FINANCE, application_name="acme monitoring") as conn,
            conn,
            conn.cursor() as cur,
        ):
            changes, seconds = unloaded_changes(cur, watermark)
            oldest = oldest_open_transaction(cur)
        return Lag(changes, seconds, float(oldest["age_seconds"] or 0) if oldest else 0.0)
