"""`acme pipeline ...`: load changes and build the warehouse."""

from __future__ import annotations

import json

import click

from loader.copy_changes import DEFAULT_BATCH_SIZE
from loader.resync import resync as resync_source
from loader.status import pipeline_status
from pipeline.cycle import follow as follow_cycles
from pipeline.cycle import run_cycle


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
    default=2.0,
    show_default=True,
    help="Seconds to wait between cycles with --follow.",
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
    help="Land at most this many batches, then build; the rest waits for the next run.",
)
@click.option(
    "--full-refresh", is_flag=True, help="Rebuild the incremental models from everything staged."
)
def run(
    follow: bool, interval: float, batch_size: int, max_batches: int | None, full_refresh: bool
) -> None:
    """One cycle: load new committed changes, then `dbt build` the warehouse and reports.

    Loading is exactly once and in order: a batch of changes and the new watermark are
    committed together, and a change whose transaction commits late is loaded by a later
    cycle, never skipped.
    """
    if follow:
        if full_refresh:
            raise click.UsageError("--full-refresh cannot be combined with --follow")
        follow_cycles(interval=interval, batch_size=batch_size, report=click.echo)
        return

    def show(load) -> None:
        click.echo(f"  batch {load.batches}: {load.changes} changes landed", err=True)

    result = run_cycle(
        batch_size=batch_size, max_batches=max_batches, full_refresh=full_refresh, progress=show
    )
    click.echo(result.describe())


@pipeline.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status(as_json: bool) -> None:
    """Lag (changes and seconds), watermark, what holds it back, last load, table sizes."""
    result = pipeline_status()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
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
