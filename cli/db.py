"""`acme db ...`: checks and the demo schema."""

from __future__ import annotations

import click

from connections.check import check_databases
from workload.schema import create_source_schema


@click.group()
def db() -> None:
    """Check the databases and create the demo's source schema."""


@db.command()
def check() -> None:
    """Connect to finance_db and analytics_db and report each; exit 1 if either fails."""
    results = check_databases()
    for result in results:
        click.echo(f"{result.database.label}: {result.detail}")
    if not all(result.ok for result in results):
        raise click.exceptions.Exit(1)


@db.command()
def init() -> None:
    """Create the operations schema (customers, products, orders, order_items). Idempotent."""
    create_source_schema()
    click.echo("finance_db: operations schema ready")
