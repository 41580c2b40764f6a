"""`acme pipeline run`: one cycle is load, then dbt build; `--follow` repeats until stopped."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2

from connections.errors import DatabaseUnavailable
from loader.copy_changes import DEFAULT_BATCH_SIZE, LoadResult, load_changes
from pipeline.dbt_build import BuildResult, dbt_build

MAX_BACKOFF_SECONDS = 60.0


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
            line += f"; dbt build {self.build.nodes} nodes in {self.build.seconds:.1f}s"
        else:
            line += "; nothing new, dbt build skipped"
        return line


def run_cycle(
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    full_refresh: bool = False,
    build_when_idle: bool = True,
    progress: Callable[[LoadResult], None] | None = None,
) -> CycleResult:
    load = load_changes(batch_size=batch_size, max_batches=max_batches, progress=progress)
    build = None
    if load.changes or build_when_idle or full_refresh:
        build = dbt_build(full_refresh=full_refresh)
    return CycleResult(load, build)


def follow(
    interval: float,
    batch_size: int,
    report: Callable[[str], None],
) -> int:
    """Runs cycles until SIGINT or SIGTERM; the cycle under way finishes first.

    An unreachable database is waited for with growing pauses, never skipped past."""
    stop = threading.Event()

    def request_stop(signum, _frame):
        report(f"received {signal.Signals(signum).name}: stopping after this cycle")
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    cycles, backoff, first = 0, interval, True
    try:
        while not stop.is_set():
            try:
                result = run_cycle(batch_size=batch_size, build_when_idle=first)
            except (DatabaseUnavailable, psycopg2.OperationalError) as exc:
                backoff = min(max(backoff * 2, 1.0), MAX_BACKOFF_SECONDS)
                report(f"{first_line(exc)}; retrying in {backoff:.0f}s")
                stop.wait(backoff)
                continue
            cycles, backoff, first = cycles + 1, interval, False
            report(f"{time.strftime('%H:%M:%S')} {result.describe()}")
            if result.load.changes < batch_size:
                stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report(f"stopped cleanly after {cycles} cycles")
    return cycles


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
