"""`acme local ...`: the two local PostgreSQL servers."""

from __future__ import annotations

import os
import shlex

import click

from connections.settings import ANALYTICS, FINANCE, dsn_for
from localpg import servers
from pipeline.dbt_build import dbt_environment


@click.group()
def local() -> None:
    """Run finance_db and analytics_db as two local servers owned by the project.

    Data lives under .acme/ (or $ACME_HOME). As root, the servers run as the system user
    acme-postgres, created when missing.
    """


def port_option(name: str, server: servers.LocalServer):
    """The port option, whose help shows the port that applies now: the variable's value
    when it is set, else the built-in default."""
    from_env = os.environ.get(server.port_env)
    shown = f"{from_env} from ${server.port_env}" if from_env else str(server.default_port)
    return click.option(
        f"--{name}-port",
        type=click.IntRange(1024, 65535),
        envvar=server.port_env,
        help=f"TCP port of {server.database} (or ${server.port_env})  [default: {shown}]",
    )


@local.command()
@port_option("finance", servers.FINANCE_SERVER)
@port_option("analytics", servers.ANALYTICS_SERVER)
def up(finance_port: int | None, analytics_port: int | None) -> None:
    """Create (once) and start both servers, and record their URIs. Safe to run again."""
    servers.up({"finance": finance_port, "analytics": analytics_port}, progress=click.echo)
    click.echo("ready: every acme command now uses these servers (`acme local env` shows them)")


@local.command()
def down() -> None:
    """Stop both servers (fast shutdown: open sessions are disconnected). Data is kept."""
    servers.down(progress=click.echo)


@local.command()
def status() -> None:
    """Say whether each server runs, on which port, and where its data is."""
    for server in servers.status():
        click.echo(server.describe())


@local.command()
def env() -> None:
    """Print the settings as shell export lines: eval "$(acme local env)".

    The databases' URIs, and the variables profiles.yml reads, so dbt run by hand
    (`cd dbt_project && dbt build --profiles-dir ..`) reaches the same analytics_db.
    """
    for database in (FINANCE, ANALYTICS):
        click.echo(f"export {database.env_var}={shlex.quote(dsn_for(database))}")
    for name, value in dbt_environment().items():
        if name.startswith(("DBT_ACME_", "DBT_ENV_SECRET_ACME_")):
            click.echo(f"export {name}={shlex.quote(value)}")
