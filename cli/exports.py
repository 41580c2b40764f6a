"""The four report exports: `acme <report> --output FILE`."""

from __future__ import annotations

import click

from exporter.csv_export import export_report

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
    click.echo(f"wrote {result.rows} rows to {result.path}", err=str(result.path) == "-")


@click.command("open_orders")
@output_option(None, "open_orders.csv; open_orders_summary.csv with --summary")
@click.option(
    "--summary",
    is_flag=True,
    help="Count per delivery date and status instead: delivery_date,status,order_count.",
)
def open_orders(output: str | None, summary: bool) -> None:
    """Every open order (status not COMPLETED or CANCELLED), by delivery date and status.

    Columns: order_id,customer_id,order_date,delivery_date,status, ordered by delivery_date,
    status, order_id.
    """
    report = "open_orders_summary" if summary else "open_orders"
    report_written(export_report(report, output or f"{report}.csv"))


@click.command("top_delivery_dates")
@output_option("top_delivery_dates.csv")
@LIMIT
def top_delivery_dates(output: str, limit: int) -> None:
    """The delivery dates with the most open orders: delivery_date,order_count.

    Ties go to the earlier date.
    """
    report_written(export_report("top_delivery_dates", output, limit))


@click.command("pending_items")
@output_option("pending_items.csv")
def pending_items(output: str) -> None:
    """Per product, the quantity on PENDING orders: product_id,quantity,last_updated.

    last_updated is the latest change time of those items or their orders.
    """
    report_written(export_report("pending_items", output))


@click.command("top_customers")
@output_option("top_customers.csv")
@LIMIT
def top_customers(output: str, limit: int) -> None:
    """The customers with the most PENDING orders: customer_id,customer_name,total_orders.

    Ties go to the lower customer_id.
    """
    report_written(export_report("top_customers", output, limit))


EXPORT_COMMANDS = (open_orders, top_delivery_dates, pending_items, top_customers)
