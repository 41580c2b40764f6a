"""The four report exports: `acme <report> --output FILE`."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from exporter.csv_export import export_report
from exporter.order_history import order_history as read_order_history
from exporter.reports import REPORTS, header, read_order_statuses

STATUSES = read_order_statuses()

OUTPUT_HELP = (
    "CSV file to write. A bare name goes into data-exports/ ($ACME_EXPORT_DIR); a path "
    "with a folder (./x.csv too) is used as given; - writes to standard output. A file "
    "there is replaced atomically, keeping its permissions; a symlink is followed; a pipe "
    "or device is written through."
)
LIMIT = click.option(
    "--limit",
    type=click.IntRange(1, 1_000_000),
    default=3,
    show_default=True,
    help="How many to list.",
)


def output_option(default: str | None, shown: str | None = None):
    return click.option(
        "--output",
        "-o",
        default=default,
        show_default=shown or True,
        metavar="FILE",
        help=OUTPUT_HELP,
    )


def report_written(result) -> None:
    """The confirmation goes to stderr when the CSV itself went to stdout."""
    click.echo(
        f"wrote {result.rows} rows to {result.path}; {result.reflects}",
        err=str(result.path) == "-",
    )


class MomentType(click.ParamType):
    """A commit time: ISO 8601, UTC unless it carries an offset."""

    name = "moment"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            self.fail(
                f"{value!r} is not a moment: give 'YYYY-MM-DD HH:MM:SS' (UTC, or with an "
                "offset such as +02:00)",
                param,
                ctx,
            )
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


AS_OF = click.option(
    "--as-of",
    type=MomentType(),
    metavar="'YYYY-MM-DD HH:MM:SS'",
    help="Write the report as it stood at this commit time (UTC unless an offset is given), "
    "from the history models: the same columns and order as the live report. Refused, with "
    "the moment named, after the moment the warehouse is complete up to or before capture "
    "started.",
)


@click.command(
    "open_orders",
    help=f"Every open order (status not {' or '.join(STATUSES.closed)}), by delivery date "
    f"and status.\n\nColumns: {header('open_orders')}, ordered by "
    f"{', '.join(REPORTS['open_orders'].order_by)}.",
)
@output_option(None, "open_orders.csv; open_orders_summary.csv with --summary")
@AS_OF
@click.option(
    "--summary",
    is_flag=True,
    help=f"Count per delivery date and status instead: {header('open_orders_summary')}.",
)
def open_orders(output: str | None, summary: bool, as_of: datetime | None) -> None:
    report = "open_orders_summary" if summary else "open_orders"
    report_written(export_report(report, output or f"{report}.csv", as_of=as_of))


@click.command(
    "top_delivery_dates",
    help=f"The delivery dates with the most open orders: {header('top_delivery_dates')}."
    "\n\nTies go to the earlier date.",
)
@output_option("top_delivery_dates.csv")
@LIMIT
@AS_OF
def top_delivery_dates(output: str, limit: int, as_of: datetime | None) -> None:
    report_written(export_report("top_delivery_dates", output, limit, as_of))


@click.command(
    "pending_items",
    help=f"Per product, the quantity on {STATUSES.pending} orders: {header('pending_items')}."
    "\n\nlast_updated is the latest change time of those items or their orders.",
)
@output_option("pending_items.csv")
@AS_OF
def pending_items(output: str, as_of: datetime | None) -> None:
    report_written(export_report("pending_items", output, as_of=as_of))


@click.command(
    "top_customers",
    help=f"The customers with the most {STATUSES.pending} orders: {header('top_customers')}."
    "\n\nTies go to the lower customer_id.",
)
@output_option("top_customers.csv")
@LIMIT
@AS_OF
def top_customers(output: str, limit: int, as_of: datetime | None) -> None:
    report_written(export_report("top_customers", output, limit, as_of))


@click.command(
    "order_lifecycle",
    help="How long orders sat in each status: per status, the status intervals that ended in "
    f"the window, counted, with their duration in hours: {header('order_lifecycle')}."
    "\n\nAn interval runs from the commit that set the status to the commit that set "
    "another (or deleted the order); read from the history models.",
)
@output_option("order_lifecycle.csv")
@click.option(
    "--since",
    type=MomentType(),
    metavar="'YYYY-MM-DD[ HH:MM:SS]'",
    help="Only intervals that ended at or after this moment (UTC unless an offset is given).",
)
@click.option(
    "--until",
    type=MomentType(),
    metavar="'YYYY-MM-DD[ HH:MM:SS]'",
    help="Only intervals that ended before this moment.",
)
@AS_OF
def order_lifecycle(
    output: str, since: datetime | None, until: datetime | None, as_of: datetime | None
) -> None:
    if since and until and since >= until:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    settings = {
        name: moment.isoformat()
        for name, moment in (("acme.lifecycle_since", since), ("acme.lifecycle_until", until))
        if moment is not None
    }
    report_written(export_report("order_lifecycle", output, as_of=as_of, settings=settings))


EXPORT_COMMANDS = (open_orders, top_delivery_dates, pending_items, top_customers, order_lifecycle)


@click.command("order_history")
@click.argument("order_id", type=click.IntRange(1))
def order_history(order_id: int) -> None:
    """Every version of one order and of its items, from the history models: when each
    started and ended (commit times, UTC), its status, delivery date and customer, and for
    each item its product and quantity; how each version ended (UPDATE, DELETE, TRUNCATE)."""
    for line in read_order_history(order_id).lines():
        click.echo(line)
