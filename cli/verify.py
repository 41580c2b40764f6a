"""`acme verify`: does the warehouse hold exactly what the source holds?"""

from __future__ import annotations

import json

import click

from reconcile.verify import verify as verify_tables


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def verify(as_json: bool) -> None:
    """Compare every captured table with its warehouse table; exit 1 on any difference.

    Row counts and an order-independent hash of every row's values are compared; for a table
    that differs, the first differing keys are named. Run it when the pipeline has drained
    (`acme pipeline run` after the writers stop): changes not yet loaded are differences.
    """
    result = verify_tables()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(f"{'table':<26} {'source rows':>12} {'warehouse rows':>15}  result")
        for table in result.tables:
            warehouse_rows = "-" if table.warehouse_rows is None else table.warehouse_rows
            verdict = "ok" if table.matches else "DIFFERENT"
            click.echo(
                f"{table.source_table:<26} {table.source_rows:>12} {warehouse_rows:>15}  {verdict}"
            )
            for key in table.differing_keys:
                click.echo(f"    key {key}")
            if table.note:
                click.echo(f"    {table.note}")
        click.echo(
            f"{result.rows_verified} source rows verified; {result.pending_changes} "
            "committed changes not yet loaded"
        )
    if not result.ok:
        if not as_json:
            click.echo("verify: the warehouse differs from the source", err=True)
        raise click.exceptions.Exit(1)
