"""The report exports: which report model, which columns, in which order.

Stated once, in dbt_project/models/reports/reports.yml: a report model whose meta has
`export` is exported, with the columns the yml lists, in their order. `order_by` sorts it; a
ranked report names its `rank` column instead, which sorts it, bounds `--limit` and is left
out of the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connections.dbt_project import MODELS_DIR, acme_vars, read_yml

REPORTS_YML = MODELS_DIR / "reports" / "reports.yml"
REPORT_SCHEMA = "reports"
# Each exported report's twin that reads the marts as they stood at the session's acme.as_of
# (dbt_project/models/reports/as_of/): the same columns, the same order.
AS_OF_SUFFIX = "_as_of"


@dataclass(frozen=True)
class Report:
    name: str
    relation: str
    columns: tuple[str, ...]
    order_by: tuple[str, ...]
    limited: bool = False
    # Read from the history models (meta export `from: history`), so it reflects the moment
    # they are built through rather than the marts'.
    from_history: bool = False


def read_reports(path: Path = REPORTS_YML) -> dict[str, Report]:
    reports = {}
    for model in read_yml(path)["models"]:
        export = model.get("config", {}).get("meta", {}).get("export")
        if export is None:
            continue
        rank = export.get("rank")
        columns = tuple(column["name"] for column in model["columns"] if column["name"] != rank)
        reports[model["name"]] = Report(
            model["name"],
            f"{REPORT_SCHEMA}.{model['name']}",
            columns,
            (rank,) if rank else tuple(export["order_by"]),
            limited=rank is not None,
            from_history=export.get("from") == "history",
        )
    return reports


REPORTS = read_reports()


@dataclass(frozen=True)
class OrderStatuses:
    """The report definitions' statuses: the dbt vars the models' macros read."""

    closed: tuple[str, ...]
    pending: str


def read_order_statuses() -> OrderStatuses:
    acme = acme_vars()
    return OrderStatuses(tuple(acme["closed_order_statuses"]), acme["pending_order_status"])


def header(name: str) -> str:
    """A report's CSV header line, for help texts."""
    return ",".join(REPORTS[name].columns)


def export_query(report: Report, limit: int | None, relation: str | None = None) -> str:
    """The SELECT behind one export (from relation: the report's own by default, or its
    as-of twin); limit is an int checked by the caller."""
    query = (
        f"select {', '.join(report.columns)} from {relation or report.relation} "
        f"order by {', '.join(report.order_by)}"
    )
    if report.limited and limit is not None:
        query += f" limit {int(limit)}"
    return query
