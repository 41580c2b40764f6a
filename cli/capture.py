"""`acme capture ...`: the change log and triggers on finance_db."""

from __future__ import annotations

import click

from loader import capture as capture_service
from loader.prune import prune as prune_service


@click.group()
def capture() -> None:
    """Install, remove or inspect change capture on finance_db."""


@capture.command()
@click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="SCHEMA.TABLE",
    help="Capture this table (repeatable)  [default: every table of operations]",
)
def install(tables: tuple[str, ...]) -> None:
    """Install cdc.change_log and its triggers, snapshotting existing rows. Idempotent.

    Every insert, update, delete and truncate is then written to cdc.change_log inside the
    writing transaction. Tables already captured are left as they are.
    """
    for result in capture_service.install(list(tables) or None):
        click.echo(result.describe())


@capture.command()
@click.option(
    "--purge", is_flag=True, help="Also drop cdc.change_log, losing changes not yet loaded."
)
def uninstall(purge: bool) -> None:
    """Stop capturing. The change log is kept (so the loader can drain it) unless --purge."""
    stopped = capture_service.uninstall(purge=purge)
    click.echo(
        f"stopped capturing {len(stopped)} tables" + (", change log dropped" if purge else "")
    )


@capture.command()
def status() -> None:
    """Show the captured tables, any trigger missing or disabled, and what the change log
    holds. Exits 1 unless capture is installed and whole."""
    result = capture_service.status()
    if not result.installed:
        click.echo("capture: not installed (run `acme capture install`)")
        raise click.exceptions.Exit(1)
    if not result.tables:
        click.echo("capture: no table is captured (run `acme capture install`)")
    elif result.faults:
        click.echo(
            f"capture: NOT WHOLE on {len(result.tables)} tables: writes may pass uncaptured "
            "(run `acme capture install`, then `acme pipeline resync`)"
        )
    else:
        click.echo(f"capture: installed on {len(result.tables)} tables")
    for table in result.tables:
        faults = [f"{f.trigger} {f.fault}" for f in result.faults if f.table == table]
        click.echo(f"  {table}" + (f": {', '.join(faults)}" if faults else ""))
    click.echo(
        "schema changes: "
        + (
            "captured"
            if result.schema_changes_captured
            else "not captured (install capture as a superuser to record DDL in the stream)"
        )
    )
    click.echo(
        f"change log: {result.changes_in_log} changes in {plural(result.segments, 'segment')}"
        + (
            f", from {result.oldest_change_at} to {result.newest_change_at}"
            if result.changes_in_log
            else ""
        )
    )
    if not result.whole:
        raise click.exceptions.Exit(1)


class Duration(click.ParamType):
    """A period such as 30s, 15m, 12h or 7d, in seconds."""

    name = "duration"
    UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    # Far beyond any retention, and well inside what a PostgreSQL interval holds.
    LONGEST = 100 * 366 * 86400

    def convert(self, value, param, ctx):
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        if len(text) > 1 and text[-1] in self.UNITS and text[:-1].isdigit():
            seconds = float(int(text[:-1]) * self.UNITS[text[-1]])
            if seconds > self.LONGEST:
                self.fail(f"{value!r} is longer than 100 years", param, ctx)
            return seconds
        self.fail(f"{value!r} is not a period like 30s, 15m, 12h or 7d", param, ctx)


@capture.command()
@click.option(
    "--older-than",
    "retention",
    type=Duration(),
    default="7d",
    show_default=True,
    help="Keep changes younger than this (30s, 15m, 12h, 7d).",
)
def prune(retention: float) -> None:
    """Drop the changes the warehouse has loaded and that are older than the retention.

    The change log is kept in segments, and prune drops whole segments (no DELETE, nothing
    left for vacuum): it closes the current segment once it holds changes older than the
    retention, and drops each closed one whose every change the warehouse has landed once
    it was closed longer ago than the retention. The log therefore keeps between one and two
    retention periods. Never removes a change above the warehouse's watermark, so nothing
    not yet loaded is lost; the staged history in analytics_db keeps every change. Writers
    wait at most 200 ms for a segment's drop. Safe to run on a schedule.
    """
    result = prune_service(retention)
    through = f" (changes through {result.through_change_id})" if result.segments_dropped else ""
    click.echo(
        f"dropped {plural(result.segments_dropped, 'segment')} of the change log{through}; "
        f"{plural(result.segments_kept, 'segment')} left"
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
