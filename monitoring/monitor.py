"""What `acme pipeline run` tells about each cycle: one log line with the lag measured after
it, and, when metrics are served, the Prometheus metrics."""

from __future__ import annotations

import logging

from monitoring.lag import Lag, LagProbe
from monitoring.metrics import PipelineMetrics

log = logging.getLogger("acme.pipeline")


class PipelineMonitor:
    """The observer of pipeline.cycle.follow(): called after each successful cycle and each
    failed attempt (the follow loop logs the retry line itself)."""

    def __init__(self, metrics: PipelineMetrics | None = None, probe: LagProbe | None = None):
        self.metrics = metrics
        self.probe = probe or LagProbe()

    def cycle_succeeded(self, result) -> None:
        lag = self.probe.measure()
        if self.metrics:
            self.metrics.record_cycle(result, lag)
        log.info(
            describe_cycle(result, lag),
            extra={"event": "cycle", "fields": cycle_fields(result, lag)},
        )

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
