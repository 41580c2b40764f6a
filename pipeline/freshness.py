"""The staged change log's freshness, as `dbt source freshness` reports it (its thresholds and
the moment it measures are the dbt project's: models/staging/staging.yml)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from connections.errors import AcmeError, BuildFailed
from pipeline.dbt_build import dbt_args, dbt_artifacts_dir, dbt_environment

CHANGE_LOG_SOURCE = "source:cdc.change_log"
# What dbt reports for a loaded_at_query that returned null.
DBT_NULL_MOMENT = datetime.min.replace(tzinfo=UTC)
# Statuses of the freshness `acme pipeline status` shows that make it exit 1.
FAILING = ("error", "runtime error")


def staged_log_freshness(commit_times_tracked: bool) -> dict:
    """The freshness `acme pipeline status` shows, as a dict: dbt's verdict (pass, warn or
    error) with the moment, its age and the thresholds; or a status saying why there is none
    ("not measurable", "runtime error") with a message."""
    if not commit_times_tracked:
        return not_measurable(
            "finance_db does not track commit times (track_commit_timestamp), so no moment "
            "says which commits the staged log holds"
        )
    try:
        return change_log_freshness()
    except AcmeError as error:
        return {"status": "runtime error", "message": str(error)}


def not_measurable(why: str) -> dict:
    return {"status": "not measurable", "message": why}


def change_log_freshness() -> dict:
    """Runs `dbt source freshness` on the staged change log. It takes no build lock, so a
    status never waits for a --follow cycle, and writes its artifacts to a folder of its own,
    so it never writes over a build's."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment())
    folder = dbt_artifacts_dir() / "freshness"
    outcome = dbtRunner().invoke(
        dbt_args(
            "source freshness",
            # its verdict is this command's to print: dbt prints nothing (a warning too would
            # land in --json's output), and logs to its file
            "--log-level",
            "none",
            "--select",
            CHANGE_LOG_SOURCE,
            "--target-path",
            str(folder / "target"),
            "--log-path",
            str(folder / "logs"),
        )
    )
    results = [
        result
        for result in getattr(outcome.result, "results", None) or []
        if result.node.unique_id.startswith("source.")
    ]
    checked = len(results) == 1 and getattr(results[0], "max_loaded_at", None) is not None
    if outcome.exception is not None or not checked:
        raise BuildFailed(
            f"dbt source freshness could not check the change log: "
            f"{outcome.exception or 'see ' + str(folder / 'logs' / 'dbt.log')}"
        )
    (result,) = results
    if result.max_loaded_at == DBT_NULL_MOMENT:
        return not_measurable(
            "no load has recorded the moment the staged log is complete through since "
            "finance_db tracks commit times: run `acme pipeline run`"
        )
    criteria = result.node.freshness
    return {
        "status": str(result.status),
        "complete_through": result.max_loaded_at.isoformat(),
        "age_seconds": round(result.age, 1),
        "warn_after": threshold(criteria.warn_after),
        "error_after": threshold(criteria.error_after),
    }


def threshold(time) -> str:
    return f"{time.count} {time.period}s" if time and time.count else "never"


def duration_text(seconds: float) -> str:
    """45s, 12m 5s, 2h 0m."""
    whole = max(0, round(seconds))
    if whole < 120:
        return f"{whole}s"
    if whole < 7200:
        return f"{whole // 60}m {whole % 60}s"
    return f"{whole // 3600}h {whole % 3600 // 60}m"
