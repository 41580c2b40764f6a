"""What `acme pipeline run` tells about each cycle: one log line with the lag measured after
it, and, when metrics are served, the Prometheus metrics."""

from __future__ import annotations

import logging
import time

from monitoring.lag import Lag, LagProbe
from monitoring.metrics import PipelineMetrics

log = logging.getLogger("acme.pipeline")

# An idle follow loop says so once a minute, not once a cycle.
IDLE_REPORT_SECONDS = 60.0


class PipelineMonitor:
    """The observer of pipeline.cycle.follow(): called after each successful cycle and each
    failed attempt (the follow loop logs the retry line itself)."""

    def __init__(
        self,
        metrics: PipelineMetrics | None = None,
        probe: LagProbe | None = None,
        verbose: bool = False,
    ):
        self.metrics = metrics
        self.probe = probe or LagProbe()
        self.verbose = verbose
        self.idle_cycles = 0
        self.idle_reported_at: float | None = None

    def cycle_succeeded(self, result) -> None:
        """A cycle that loaded or built something is one INFO line; an idle one is logged at
        DEBUG, and summed up at INFO once a minute (every cycle at INFO when verbose)."""
        lag = self.probe.measure()
        if self.metrics:
            self.metrics.record_cycle(result, lag)
        idle = result.load.changes == 0 and result.build is None
        line = describe_cycle(result, lag)
        fields = {"event": "cycle", "fields": cycle_fields(result, lag)}
        if not idle or self.verbose:
            self.idle_cycles = 0
            log.info(line, extra=fields)
            return
        self.idle_cycles += 1
        now = time.monotonic()
        if self.idle_reported_at is None or now - self.idle_reported_at >= IDLE_REPORT_SECONDS:
            log.info(
                f"{line} (idle: {self.idle_cycles} cycles found nothing new since the last "
                "report; the next comes in a minute or with the next change)",
                extra=fields,
            )
            self.idle_reported_at, self.idle_cycles = now, 0
        else:
            log.debug(line, extra=fields)

    def attempt_failed(self, error: BaseException) -> None:
        lag = self.probe.measure()
        if self.metrics:
            self.metrics.record_failure(error, lag)


def describe_cycle(result, lag: Lag | None) -> str:
    line = result.describe()
    if lag is not None:
        line += f"; lag {lag.changes} changes, {lag.seconds:.1f}s"
    return line


def cycle_fields(result, lag: Lag | None) -> dict:
    build = result.build
    return {
        "changes": result.load.changes,
        "batches": result.load.batches,
        "load_seconds": round(result.load.seconds, 3),
        "changes_per_second": round(result.load.changes_per_second, 1),
        "build_seconds": round(build.seconds, 3) if build else None,
        "build_nodes": build.nodes if build else None,
        "lag_changes": lag.changes if lag else None,
        "lag_seconds": lag.seconds if lag else None,
        "oldest_transaction_seconds": lag.oldest_transaction_seconds if lag else None,
    }
