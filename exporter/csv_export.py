"""Writes a report to CSV, streamed by COPY into the output (exporter/output_file.py: a
regular file is replaced atomically keeping its mode, a pipe or device is written through,
`-` is standard output)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from connections.connect import connected
from connections.errors import ExportError
from connections.settings import ANALYTICS, PROJECT_ROOT
from exporter.output_file import STDOUT, describe_os_error, plan_output
from exporter.reports import REPORTS, export_query


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


def export_report(name: str, output: str, limit: int | None = None) -> ExportResult:
    report = REPORTS[name]
    target = resolve_output(output)
    destination = plan_output(target)
    with (
        connected(ANALYTICS, application_name=f"acme export {name}") as conn,
        conn,
        conn.cursor() as cur,
    ):
        cur.execute("select to_regclass(%s) is not null", (report.relation,))
        if not cur.fetchone()[0]:
            raise ExportError(
                f"the report {report.relation} does not exist yet: run `acme pipeline run` first"
            )
        cur.execute("set local role acme_reporting")
        cur.execute("set local datestyle = 'ISO, YMD'")
        query = f"copy ({export_query(report, limit)}) to stdout with (format csv, header)"

        def copy_into(out) -> int:
            cur.copy_expert(query, out)
            return cur.rowcount

        rows = destination.write(copy_into)
    return ExportResult(target, rows)
