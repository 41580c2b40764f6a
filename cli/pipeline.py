"""`acme pipeline ...`: load changes and build the warehouse."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import click
import psycopg2

from connections.errors import AcmeError
from loader.copy_changes import DEFAULT_BATCH_SIZE
from loader.resync import resync as resync_source
from loader.status import PipelineStatus, pipeline_status
from monitoring.logs import LOG_FORMATS, configure_logging
from monitoring.metrics import PipelineMetrics, serve_metrics
from monitoring.monitor import PipelineMonitor
from pipeline.cycle import DEFAULT_HISTORY_INTERVAL, DEFAULT_TEST_INTERVAL, run_cycle
from pipeline.cycle import follow as follow_cycles
from pipeline.freshness import FAILING, duration_text, staged_log_freshness

log = logging.getLogger("acme.pipeline")


@click.group()
def pipeline() -> None:
    """Copy committed changes into analytics_db and build the dbt models."""


@pipeline.command()
@click.option(
    "--follow",
    is_flag=True,
    help="Keep running cycles until interrupted (SIGINT/SIGTERM stop it cleanly).",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=0.5,
    show_default=True,
    help="Seconds to wait between cycles with --follow, when the last one found no backlog.",
)
@click.option(
    "--test-interval",
    type=click.FloatRange(0, 86400),
    default=DEFAULT_TEST_INTERVAL,
    show_default=True,
    help="With --follow: seconds between runs of the dbt data tests. Cycles in between run "
    "only the incremental models, so a change reaches the reports in seconds; a failing test "
    "stops --follow. 0 tests after every cycle that loaded changes.",
)
@click.option(
    "--history-interval",
    type=click.FloatRange(0, 86400),
    default=DEFAULT_HISTORY_INTERVAL,
    show_default=True,
    help="With --follow: seconds between builds of the history models "
    "(analytics.*_history, every version of every row), which no live report reads. Cycles "
    "in between build only the marts, so the reports stay seconds behind the source and the "
    "history at most this much; 0 builds them every cycle.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Changes per committed batch.",
)
@click.option(
    "--max-batches",
    type=click.IntRange(1),
    help="Land at most this many batches, then build; the rest waits for the next run. "
    "The last batch is finished to the end of its transaction, so one large transaction "
    "(such as capture's initial snapshot) lands whole, in as many batches as it fills.",
)
@click.option(
    "--full-refresh", is_flag=True, help="Rebuild the incremental models from everything staged."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="With --follow: serve Prometheus metrics on http://HOST:PORT/metrics "
    "(the Docker deployment uses 9108).",
)
@click.option(
    "--metrics-host",
    default="0.0.0.0",
    show_default=True,
    help="Address the metrics endpoint listens on: every interface by default, as exporters "
    "do (a Prometheus in another container must reach it); 127.0.0.1 keeps it local.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="text: `HH:MM:SS message` lines; json: one JSON object per line (ts, level, event, "
    "message and the cycle's numbers), with dbt's own output as JSON at warn and above.",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="With --follow, log every cycle; by default a cycle that found nothing new is "
    "summed up once a minute.",
)
def run(
    follow: bool,
    interval: float,
    test_interval: float,
    history_interval: float,
    batch_size: int,
    max_batches: int | None,
    full_refresh: bool,
    metrics_port: int | None,
    metrics_host: str,
    log_format: str,
    verbose: bool,
) -> None:
    """One cycle: load new committed changes, then `dbt build` the warehouse and reports.

    Loading is exactly once and in order: a batch of changes and the new watermark are
    committed together, and a change whose transaction commits late is loaded by a later
    cycle, never skipped.

    With --follow, one log line per cycle (changes loaded, load and build seconds, lag) and
    one per retry; --metrics-port serves the same numbers to Prometheus.
    """
    if metrics_port is not None and not follow:
        raise click.UsageError("--metrics-port needs --follow (one cycle ends before a scrape)")
    configure_logging(log_format)
    if follow:
        if full_refresh:
            raise click.UsageError("--full-refresh cannot be combined with --follow")
        metrics = None
        serving: AbstractContextManager[object] = nullcontext()
        if metrics_port is not None:
            metrics = PipelineMetrics()
            serving = serve_metrics(metrics, metrics_host, metrics_port)
        with serving, failures_logged(as_json=log_format == "json"):
            follow_cycles(
                interval=interval,
                batch_size=batch_size,
                observer=PipelineMonitor(metrics, verbose=verbose),
                test_interval=test_interval,
                history_interval=history_interval,
            )
        return
    if log_format == "json":
        with failures_logged(as_json=True):
            result = run_cycle(
                batch_size=batch_size,
                max_batches=max_batches,
                full_refresh=full_refresh,
                build_when_idle=False,
                progress=log_batch,
            )
            PipelineMonitor().cycle_succeeded(result)
        return

    def show(load) -> None:
        click.echo(f"  batch {load.batches}: {load.changes} changes landed", err=True)

    result = run_cycle(
        batch_size=batch_size,
        max_batches=max_batches,
        full_refresh=full_refresh,
        build_when_idle=False,
        progress=show,
    )
    click.echo(result.describe())


def log_batch(load) -> None:
    log.info(
        f"batch {load.batches}: {load.changes} changes landed",
        extra={"event": "batch", "fields": {"batches": load.batches, "changes": load.changes}},
    )


@contextmanager
def failures_logged(as_json: bool) -> Iterator[None]:
    """Under json, the failure that ends the command is also a JSON line (level error), so a
    log collector reading stdout sees it; the `Error: ...` line on stderr follows as always."""
    try:
        yield
    except (AcmeError, psycopg2.Error) as exc:
        if as_json:
            log.error(str(exc).strip(), extra={"event": "failed"})
        raise


@pipeline.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@click.option(
    "--freshness/--no-freshness",
    default=True,
    show_default=True,
    help="Run `dbt source freshness` on the staged change log (a few seconds: dbt starts).",
)
def status(as_json: bool, freshness: bool) -> None:
    """Lag (changes and seconds), watermark, what holds it back, last load, table sizes, what
    the reports reflect, and the staged log's freshness.

    Freshness is dbt's: how long ago the moment the staged changes are complete through was
    (every change committed before it has landed). Loads move it even when nothing changed,
    so it ages when loads stop or a transaction left open holds later commits back. It warns
    after 15 minutes and is an error after an hour (dbt_project/models/staging/staging.yml);
    an error, or a check that could not run, makes this command exit 1 after the rest of
    the status is shown. Without commit times on finance_db it is not measurable."""
    result = pipeline_status()
    if freshness and result.watermark_change_id is not None:
        result.freshness = staged_log_freshness(bool(result.commit_times_tracked))
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        show_status(result)
    if result.freshness and result.freshness["status"] in FAILING:
        raise SystemExit(1)


def show_status(result: PipelineStatus) -> None:
    if result.watermark_change_id is None:
        click.echo("watermark: none yet (no load has run)")
    else:
        click.echo(f"watermark: txid {result.watermark_txid}, change {result.watermark_change_id}")
        if result.source_matches_watermark is False:
            click.echo("  WARNING: finance_db is not the server the watermark was taken from")
    click.echo(
        f"lag: {result.lag_changes} changes, {result.lag_seconds:.1f}s "
        f"(horizon txid {result.horizon_txid})"
    )
    oldest = result.oldest_open_transaction
    if oldest:
        click.echo(
            f"oldest open transaction: "
            f"{'pid ' + str(oldest['pid']) if oldest['pid'] else 'no session'} ({oldest['user']}, "
            f"{oldest['application'] or 'no application name'}, {oldest['state']}), "
            f"open {oldest['age_seconds']}s: changes from transactions after it wait "
            "until it ends"
        )
    else:
        click.echo("oldest open transaction: none")
    if result.last_load_at:
        click.echo(
            f"last load: {result.last_load_at} ({result.last_load_changes} changes); "
            f"{result.changes_staged} changes staged in all"
        )
    else:
        click.echo("last load: never")
    for table, rows in result.rows_per_table.items():
        click.echo(f"  {table}: {'not built' if rows is None else f'{rows} rows'}")
    if result.capture_faults:
        click.echo(
            f"capture: NOT WHOLE ({'; '.join(result.capture_faults)}): run `acme capture "
            "install`, then `acme pipeline resync`"
        )
    if not result.schema_changes_captured:
        click.echo("schema changes: not captured (capture was installed by a non-superuser)")
    if result.commit_times_tracked:
        click.echo("history time: commit time")
    else:
        click.echo(
            "history time: statement time (finance_db has track_commit_timestamp off: turn it "
            "on and restart finance_db to date history versions by commit time)"
        )
    for table, columns in result.unmodelled_columns.items():
        click.echo(f"  {table}: source columns no model reads yet: {', '.join(columns)}")
    for name, moment in (("reports", result.reports_reflect), ("history", result.history_reflects)):
        if moment is None:
            click.echo(f"{name}: not built yet")
        elif moment["complete_through"] is None:
            click.echo(f"{name}: through change_id {moment['change_id']}")
        else:
            click.echo(
                f"{name}: every change committed before {moment['complete_through']} "
                f"(through change_id {moment['change_id']})"
            )
    fresh = result.freshness
    if fresh and "message" in fresh:
        click.echo(f"freshness: {fresh['status']}: {fresh['message']}")
    elif fresh:
        click.echo(
            f"freshness: {fresh['status']}: the staged changes are complete through "
            f"{fresh['complete_through']}, {duration_text(fresh['age_seconds'])} ago (warn "
            f"after {fresh['warn_after']}, error after {fresh['error_after']})"
        )
    elif result.watermark_change_id is None:
        click.echo("freshness: not checked (no load has run)")
    else:
        click.echo("freshness: not checked (--no-freshness)")


@pipeline.command()
def resync() -> None:
    """Re-snapshot every captured table when the change log cannot catch the warehouse up.

    Needed when `pipeline run` says changes were pruned past the watermark (analytics_db was
    restored from an older backup) or that finance_db is a different server (restored into
    a new one). Writers are locked out of the captured tables for the snapshot's duration.
    Then run `acme pipeline run`.
    """
    result = resync_source()
    for table, rows in result.snapshotted.items():
        click.echo(f"{table}: snapshot of {rows} rows")
    origin = "a new source server" if result.source_changed else "the same source server"
    click.echo(
        f"watermark reset for {origin}; changes below {result.change_id_floor} are superseded "
        "by the snapshot. Run `acme pipeline run` to load it."
    )
