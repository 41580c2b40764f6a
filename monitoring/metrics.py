"""Prometheus metrics of `acme pipeline run --follow`, served on `--metrics-port` (/metrics).

The metrics live in their own CollectorRegistry rather than prometheus_client's global one,
so only these series are exposed (no process or Python collectors) and two instances, as in
the tests, never collide over a name.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from connections.errors import BuildFailed, ConfigurationError
from monitoring.lag import Lag

# A page of 50,000 changes lands in seconds; a catch-up after an outage can take minutes.
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# dbt starts in a few seconds and a full build of a large warehouse takes minutes.
BUILD_BUCKETS = (1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 600)


class PipelineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.changes_loaded = Counter(
            "acme_changes_loaded",
            "Committed changes landed in analytics_db's staging.change_log by this process.",
            registry=registry,
        )
        self.batches_loaded = Counter(
            "acme_batches_loaded",
            "Batches (each committed with its watermark) landed by this process.",
            registry=registry,
        )
        self.load_duration = Histogram(
            "acme_load_duration_seconds",
            "Seconds each cycle spent loading changes from finance_db into analytics_db.",
            buckets=LOAD_BUCKETS,
            registry=registry,
        )
        self.build_duration = Histogram(
            "acme_dbt_build_duration_seconds",
            "Seconds of each successful dbt build of the warehouse and reports.",
            buckets=BUILD_BUCKETS,
            registry=registry,
        )
        self.build_failures = Counter(
            "acme_dbt_build_failures",
            "dbt builds that failed and were retried (a failing test or model stops --follow).",
            registry=registry,
        )
        self.cycles = Counter(
            "acme_cycles",
            "Cycles (load, then dbt build when owed) that succeeded.",
            registry=registry,
        )
        self.cycle_failures = Counter(
            "acme_cycle_failures",
            "Cycle attempts that failed because a database was down or restarting; each is "
            "retried from the stored watermark.",
            registry=registry,
        )
        self.last_success = Gauge(
            "acme_last_success_timestamp_seconds",
            "Unix time of the end of the last successful cycle (0 before the first).",
            registry=registry,
        )
        self.lag_changes = Gauge(
            "acme_lag_changes",
            "Committed changes in finance_db's change log not yet landed in analytics_db.",
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "acme_lag_seconds",
            "Age in seconds of the oldest committed change not yet landed (0 when none).",
            registry=registry,
        )
        self.oldest_transaction = Gauge(
            "acme_oldest_open_transaction_seconds",
            "Age in seconds of the oldest open transaction on finance_db's server, which holds "
            "the loader's horizon back (0 when none).",
            registry=registry,
        )
        self.lag_measured = Gauge(
            "acme_lag_measured_timestamp_seconds",
            "Unix time the lag gauges were last measured; they keep their last value while a "
            "database is down.",
            registry=registry,
        )

    def record_cycle(self, result, lag: Lag | None) -> None:
        """A successful cycle: a pipeline.cycle.CycleResult, and the lag measured after it."""
        self.changes_loaded.inc(result.load.changes)
        self.batches_loaded.inc(result.load.batches)
        self.load_duration.observe(result.load.seconds)
        if result.build is not None:
            self.build_duration.observe(result.build.seconds)
        self.cycles.inc()
        self.last_success.set(time.time())
        self.record_lag(lag)

    def record_failure(self, error: BaseException, lag: Lag | None) -> None:
        self.cycle_failures.inc()
        if failed_in_build(error):
            self.build_failures.inc()
        self.record_lag(lag)

    def record_lag(self, lag: Lag | None) -> None:
        if lag is None:
            return
        self.lag_changes.set(lag.changes)
        self.lag_seconds.set(lag.seconds)
        self.oldest_transaction.set(lag.oldest_transaction_seconds)
        self.lag_measured.set(time.time())


def failed_in_build(error: BaseException | None) -> bool:
    """Whether the error is dbt's failure, or was caused by one: an outage during the build
    surfaces as DatabaseUnavailable raised by the cycle, from dbt's BuildFailed."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, BuildFailed):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def serve_metrics(metrics: PipelineMetrics, host: str, port: int) -> Iterator[None]:
    """/metrics over HTTP on host:port while the block runs; ConfigurationError, one line,
    when the address cannot be listened on."""
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigurationError(cannot_listen(host, port, exc)) from exc
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def cannot_listen(host: str, port: int, exc: OSError) -> str:
    where = f"cannot serve metrics on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use; pick another --metrics-port or stop what uses it"
    if exc.errno == errno.EACCES:
        return (
            f"{where}: no permission to listen on that port; pick a --metrics-port above 1023 "
            "or run with the privilege to bind it"
        )
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{where}: {host} is not an address of this machine; pass --metrics-host 0.0.0.0 "
            "(every interface) or 127.0.0.1"
        )
    return f"{where}: {exc.strerror or exc}; check --metrics-host and --metrics-port"
