"""The `acme` command: the platform's commands, and the one place errors become one line."""

from __future__ import annotations

import click
import psycopg2

from cli.capture import capture
from cli.db import db
from cli.demo import demo
from cli.docs import docs
from cli.exports import EXPORT_COMMANDS, order_history
from cli.local import local
from cli.pipeline import pipeline
from cli.simulate import simulate
from cli.verify import verify
from connections.errors import AcmeError, first_line
from exporter.output_file import Stopped


class AcmeGroup(click.Group):
    """Turns the platform's errors into `Error: <what is wrong and what to do>`, exit 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AcmeError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            # A path the platform was pointed at (ACME_HOME, ACME_EXPORT_DIR, a folder it
            # creates) that this user cannot use: one line, not a traceback.
            where = f"{exc.filename}" if exc.filename else "a file"
            raise click.ClickException(
                f"cannot use {where} ({exc.strerror or exc}): check the path and its "
                "permissions (ACME_HOME, ACME_EXPORT_DIR, --output)"
            ) from exc
        except Stopped as exc:
            click.echo(f"Error: {exc}; nothing was left half-written", err=True)
            ctx.exit(128 + exc.signum)
        except psycopg2.Error as exc:
            primary = getattr(exc.diag, "message_primary", None)
            raise click.ClickException(f"database error: {primary or first_line(exc)}") from exc


@click.group(cls=AcmeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="acme-delivery-analytics")
def acme() -> None:
    """ACME Delivery Analytics: change capture from finance_db into analytics_db, and reports.

    \b
    Quick start (local servers, no Docker):
      acme local up          start finance_db and analytics_db
      acme db init           create the operations schema (demo application)
      acme capture install   start capturing changes into cdc.change_log
      acme simulate          write a realistic order workload
      acme pipeline run      load new changes and build the warehouse with dbt
      acme open_orders       export a report to data-exports/open_orders.csv

    Databases: ACME_FINANCE_DSN and ACME_ANALYTICS_DSN (postgresql:// URIs) override the
    local servers that `acme local up` records.
    """


for command in (
    local,
    db,
    capture,
    pipeline,
    simulate,
    verify,
    demo,
    docs,
    *EXPORT_COMMANDS,
    order_history,
):
    acme.add_command(command)


def main() -> None:
    acme(prog_name="acme")
