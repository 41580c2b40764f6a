"""The staged change log's freshness, as `dbt source freshness` reports it (its thresholds and
the moment it measures are the dbt project's: models/staging/staging.yml)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from connections.errors import BuildFailed
from pipeline.dbt_build import dbt_args, dbt_artifacts_dir, dbt_environment

CHANGE_LOG_SOURCE = "source:cdc.change_log"


@dataclass(frozen=True)
class Freshness:
    # dbt's verdict: pass, warn or error (older than the source's warn_after / error_after).
    status: str
    # The moment the staged log is complete through, and how long ago that was.
    complete_through: str
    age_seconds: float
    warn_after: str
    error_after: str

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "complete_through": self.complete_through,
            "age_seconds": round(self.age_seconds, 1),
            "warn_after": self.warn_after,
            "error_after": self.error_after,
        }


def change_log_freshness() -> Freshness:
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
    criteria = result.node.freshness
    return Freshness(
        status=str(result.status),
        complete_through=result.max_loaded_at.isoformat(),
        age_seconds=result.age,
        warn_after=threshold(criteria.warn_after),
        error_after=threshold(criteria.error_after),
    )


def threshold(time) -> str:
    return f"{time.count} {time.period}s" if time and time.count else "never"
