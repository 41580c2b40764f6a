"""`acme docs generate`: dbt's documentation site for the project."""

from __future__ import annotations

import click

from pipeline.dbt_build import dbt_artifacts_dir, run_dbt


@click.group()
def docs() -> None:
    """dbt documentation of the warehouse: models, columns, lineage and exposures."""


@docs.command()
def generate() -> None:
    """Write the docs site (index.html, manifest.json, catalog.json) to .acme/dbt/target/."""
    run_dbt("docs generate")
    click.echo(f"docs written to {dbt_artifacts_dir() / 'target'}; open index.html there")
