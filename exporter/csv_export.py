"""Writes a report to CSV: streamed by COPY into a temporary file beside the target, then
renamed over it, so a reader never sees half a file and a failure leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from connections.connect import connect
from connections.errors import ExportError
from connections.settings import ANALYTICS, PROJECT_ROOT
from exporter.reports import REPORTS, export_query


def export_dir() -> Path:
    return Path(os.environ.get("ACME_EXPORT_DIR", PROJECT_ROOT / "data-exports"))


def resolve_output(output: str) -> Path:
    """A bare file name goes into the export folder; a path with a folder is used as given."""
    path = Path(output)
    if path.parent == Path("."):
        folder = export_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(
                f"cannot create the export folder {folder} ({exc.strerror}): set "
                "ACME_EXPORT_DIR to a writable folder or give --output a full path"
            ) from exc
        return folder / path
    return path


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int


def export_report(name: str, output: str, limit: int | None = None) -> ExportResult:
    report = REPORTS[name]
    target = resolve_output(output)
    if target.is_dir():
        raise ExportError(f"{target} is a folder: give --output a file name")
    if not target.parent.is_dir():
        raise ExportError(f"cannot write {target}: the folder {target.parent} does not exist")
    conn = connect(ANALYTICS, application_name=f"acme export {name}")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select to_regclass(%s) is not null", (report.relation,))
            if not cur.fetchone()[0]:
                raise ExportError(
                    f"the report {report.relation} does not exist yet: run "
                    "`acme pipeline run` first"
                )
            cur.execute("set local role acme_reporting")
            cur.execute("set local datestyle = 'ISO, YMD'")
            rows = write_atomically(cur, export_query(report, limit), target)
    finally:
        conn.close()
    return ExportResult(target, rows)


def write_atomically(cur, query: str, target: Path) -> int:
    try:
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise ExportError(
            f"cannot write {target} ({exc.strerror}): choose a writable --output path"
        ) from exc
    try:
        with os.fdopen(handle, "wb") as out:
            cur.copy_expert(f"copy ({query}) to stdout with (format csv, header)", out)
            rows = cur.rowcount
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ExportError(
            f"cannot write {target} ({exc.strerror or exc}): nothing was written; free space "
            "or choose another --output path"
        ) from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows
