"""`acme pipeline run`: one cycle is load, then dbt build; `--follow` repeats until stopped.

`--follow` rides out a database that is down or restarting: the failed cycle is run again
from the stored watermark after growing pauses, with one log line per attempt, so nothing is
skipped and nothing lands twice. Any other failure (a dbt test that fails, a watermark that
does not match the source) stops it with its message.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import psycopg2

from connections.connect import connected
from connections.errors import (
    AcmeError,
    DatabaseUnavailable,
    LoaderBusy,
    PipelineError,
    first_line,
)
from connections.settings import ANALYTICS, FINANCE
from loader.copy_changes import DEFAULT_BATCH_SIZE, LoadResult, load_changes
from loader.schema_contract import UnbuildableValue, first_unbuildable_value
from pipeline.dbt_build import BuildResult, FollowBuilds, dbt_build, warehouse_is_current

MAX_BACKOFF_SECONDS = 60.0
# How often --follow runs the data tests (they read whole tables, so not every cycle).
DEFAULT_TEST_INTERVAL = 300.0
# How often --follow builds the history models (no live report reads them; each build costs
# about what the marts' does, and every cycle would double the reports' latency).
DEFAULT_HISTORY_INTERVAL = 30.0

log = logging.getLogger("acme.pipeline")

# What a database going away raises, as opposed to a failure of the data or the models:
# DatabaseUnavailable (refused or timed out when connecting; also a dbt build that failed
# because analytics_db went away, see build_warehouse), psycopg2's OperationalError (the
# server terminated or closed the connection mid-statement) and InterfaceError (the
# connection was already closed when the loader tried to roll back on it), and LoaderBusy
# (a crashed loader's session still holds the loader lock until its server notices).
TRANSIENT_FAILURES = (
    DatabaseUnavailable,
    LoaderBusy,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
)


@dataclass(frozen=True)
class CycleResult:
    load: LoadResult
    build: BuildResult | None

    def describe(self) -> str:
        line = (
            f"loaded {self.load.changes} changes in {self.load.batches} batches "
            f"({self.load.seconds:.2f}s, {self.load.changes_per_second:,.0f} changes/s)"
        )
        if self.build:
            line += f"; {self.build.describe()}"
        else:
            line += "; nothing new, no build"
        return line


def run_cycle(
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    full_refresh: bool = False,
    build_when_idle: bool = True,
    progress: Callable[[LoadResult], None] | None = None,
    follow_builds: FollowBuilds | None = None,
) -> CycleResult:
    """Loads, then builds: `dbt build` of everything, or with follow_builds what --follow
    builds (pipeline/dbt_build.py, FollowBuilds). Without build_when_idle, a cycle that
    landed nothing skips the build when the warehouse is already built through the newest
    load from the project as it is (pipeline/dbt_build.py, warehouse_is_current)."""
    load = load_changes(batch_size=batch_size, max_batches=max_batches, progress=progress)
    build = None
    if follow_builds is not None:
        build = build_warehouse(lambda: follow_builds.build(load.changes > 0, build_when_idle))
    elif load.changes or build_when_idle or full_refresh or not warehouse_is_current():
        build = build_warehouse(lambda: dbt_build(full_refresh=full_refresh))
    return CycleResult(load, build)


def build_warehouse(build: Callable[[], BuildResult | None]) -> BuildResult | None:
    """Runs dbt. dbt reports a lost database as a failed build, not with psycopg2's errors,
    so a failure is checked against analytics_db: unreachable now, or restarted since the
    build began, makes it DatabaseUnavailable (an outage to wait for); with analytics_db up
    all along it stays the build's own failure (a failing test, a broken model)."""
    started_at = server_started_at(ANALYTICS)
    try:
        return build()
    except PipelineError as exc:
        try:
            restarted_at = server_started_at(ANALYTICS)
        except DatabaseUnavailable as down:
            raise DatabaseUnavailable(f"dbt build stopped: {first_line(down)}") from exc
        if restarted_at != started_at:
            raise DatabaseUnavailable(
                f"dbt build stopped: analytics_db restarted at {restarted_at:%H:%M:%S %Z} "
                "during the build"
            ) from exc
        unbuildable = staged_unbuildable_value()
        if unbuildable:
            raise PipelineError(unbuildable.describe()) from exc
        raise


def staged_unbuildable_value() -> UnbuildableValue | None:
    """Why a build failed, when the cause is a staged value a model's type cannot hold."""
    with connected(ANALYTICS, application_name="acme pipeline") as conn, conn, conn.cursor() as cur:
        return first_unbuildable_value(cur)


def server_started_at(database) -> datetime:
    """When the database's server started; DatabaseUnavailable when it cannot be reached."""
    with connected(database, application_name="acme pipeline") as conn:
        try:
            with conn, conn.cursor() as cur:
                cur.execute("select pg_postmaster_start_time()")
                return cur.fetchone()[0]
        except psycopg2.Error as exc:
            raise DatabaseUnavailable(
                f"{database.label} failed a probe: {first_line(exc)}"
            ) from exc


class CycleObserver(Protocol):
    """Told of each attempt of follow(); monitoring.monitor.PipelineMonitor logs the cycle
    line with the lag and keeps the Prometheus metrics."""

    def cycle_succeeded(self, result: CycleResult) -> None: ...

    def attempt_failed(self, error: BaseException) -> None: ...


def follow(
    interval: float,
    batch_size: int,
    observer: CycleObserver | None = None,
    test_interval: float = DEFAULT_TEST_INTERVAL,
    history_interval: float = DEFAULT_HISTORY_INTERVAL,
) -> int:
    """Runs cycles until SIGINT or SIGTERM; the cycle under way finishes first. Logs to the
    `acme.pipeline` logger; without an observer, each cycle's line is result.describe().

    An unreachable database is waited for with growing pauses, never skipped past."""
    stop = threading.Event()

    def request_stop(signum, _frame):
        name = signal.Signals(signum).name
        log.info(f"received {name}: stopping after this cycle", extra={"event": "stopping"})
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    cycles, backoff, failures, failing_since = 0, interval, 0, 0.0
    # The first cycle builds even with nothing new, and so does the first after a failure:
    # the failed one may have landed changes and then lost its build.
    build_owed = True
    builds = FollowBuilds(test_interval, history_interval)
    log.info(
        "first cycle: loading every change since the watermark, then a full dbt build with "
        "its tests (later cycles build the marts the new changes touch, and the history "
        f"models every {history_interval:g}s)",
        extra={"event": "starting"},
    )
    try:
        while not stop.is_set():
            attempt_started = time.monotonic()
            try:
                result = run_cycle(
                    batch_size=batch_size, build_when_idle=build_owed, follow_builds=builds
                )
            except TRANSIENT_FAILURES as exc:
                if not failures:
                    failing_since = attempt_started
                failures, build_owed = failures + 1, True
                backoff = min(max(backoff * 2, 1.0), MAX_BACKOFF_SECONDS)
                log.warning(
                    f"{describe_outage(exc)}; retrying in {backoff:.0f}s",
                    extra={
                        "event": "retry",
                        "fields": {
                            "attempt": failures,
                            "retry_in_seconds": backoff,
                            "failing_for_seconds": round(time.monotonic() - failing_since, 1),
                        },
                    },
                )
                if observer:
                    observer.attempt_failed(exc)
                stop.wait(backoff)
                continue
            if failures:
                log.info(
                    f"resumed from the stored watermark after {failures} failed "
                    f"attempts ({attempt_started - failing_since:.0f}s)",
                    extra={"event": "resumed", "fields": {"failed_attempts": failures}},
                )
            cycles, backoff, failures, build_owed = cycles + 1, interval, 0, False
            if observer:
                observer.cycle_succeeded(result)
            else:
                log.info(result.describe(), extra={"event": "cycle"})
            if result.load.changes < batch_size:
                stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info(f"stopped cleanly after {cycles} cycles", extra={"event": "stopped"})
    return cycles


def describe_outage(exc: Exception) -> str:
    """One line: what failed, naming the database that is down when one is."""
    if isinstance(exc, AcmeError):
        return first_line(exc)
    for database in (FINANCE, ANALYTICS):
        try:
            server_started_at(database)
        except DatabaseUnavailable as down:
            return f"lost a database connection ({first_line(exc)}): {first_line(down)}"
    return f"lost a database connection ({first_line(exc)})"
