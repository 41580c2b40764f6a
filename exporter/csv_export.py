"""Writes a report to CSV, streamed by COPY into the output (exporter/output_file.py: a
regular file is replaced atomically keeping its mode, a pipe or device is written through,
`-` is standard output)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from connections.connect import connected
from connections.errors import ExportError
from connections.settings import ANALYTICS, PROJECT_ROOT
from exporter.as_of import check_as_of
from exporter.output_file import STDOUT, describe_os_error, plan_output
from exporter.reports import AS_OF_SUFFIX, REPORTS, export_query
from pipeline.moments import HISTORY_MODELS, REPORT_MODELS, built_through, utc


def export_dir() -> Path:
    return Path(os.environ.get("ACME_EXPORT_DIR", PROJECT_ROOT / "data-exports"))


def resolve_output(output: str) -> Path | str:
    """A bare file name goes into the export folder; a path with a folder (`./x.csv` too) is
    used as given; `-` is standard output."""
    if output == STDOUT:
        return STDOUT
    if not output:
        raise ExportError("--output is empty: give a file name, a path, or - for stdout")
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    if any(separator in output for separator in separators):
        return Path(output)
    folder = export_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot create the export folder {folder} ({describe_os_error(exc)}): set "
            "ACME_EXPORT_DIR to a writable folder or give --output a full path"
        ) from exc
    return folder / output


@dataclass(frozen=True)
class ExportResult:
    path: Path | str
    rows: int
    reflects: str


def export_report(
    name: str,
    output: str,
    limit: int | None = None,
    as_of: datetime | None = None,
    settings: dict[str, str] | None = None,
) -> ExportResult:
    """Writes the report, live or (as_of) as it stood at that moment, from the history
    models (exporter/as_of.py checks the moment can be answered). settings: session settings
    the report's view reads (order_lifecycle's window), set for this export only."""
    report = REPORTS[name]
    relation = report.relation + AS_OF_SUFFIX if as_of else report.relation
    target = resolve_output(output)
    destination = plan_output(target)
    with (
        connected(ANALYTICS, application_name=f"acme export {name}") as conn,
        conn,
        conn.cursor() as cur,
    ):
        if as_of:
            # One snapshot for the check and the rows: a resync and rebuild committing in
            # between could otherwise take away versions the check vouched for.
            cur.execute("set transaction isolation level repeatable read")
        cur.execute("select to_regclass(%s) is not null", (relation,))
        if not cur.fetchone()[0]:
            raise ExportError(
                f"the report {relation} does not exist yet: run `acme pipeline run` first"
            )
        if as_of:
            check_as_of(cur, as_of)
            cur.execute("select set_config('acme.as_of', %s, true)", (as_of.isoformat(),))
            reflects = f"as it stood at {utc(as_of)}"
        else:
            moment = built_through(cur, HISTORY_MODELS if report.from_history else REPORT_MODELS)
            reflects = moment.describe() if moment else "from marts not yet built through a load"
        for setting, value in (settings or {}).items():
            cur.execute("select set_config(%s, %s, true)", (setting, value))
        cur.execute("set local role acme_reporting")
        cur.execute("set local datestyle = 'ISO, YMD'")
        query = export_query(report, limit, relation)
        copy = f"copy ({query}) to stdout with (format csv, header)"

        def copy_into(out) -> int:
            cur.copy_expert(copy, out)
            return cur.rowcount

        rows = destination.write(copy_into)
    return ExportResult(target, rows, reflects)
