"""Runs the dbt project in-process, with the profile's settings taken from analytics_db's URI."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connections.connect import connect
from connections.errors import PipelineError
from connections.settings import ANALYTICS, PROJECT_ROOT, dsn_for, parse_uri, state_dir

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
BUILD_LOCK_KEY = 7_316_002


def dbt_artifacts_dir() -> Path:
    """dbt's target and logs, kept with the environment (ACME_HOME) they were built for, so
    two environments (the demo, a test run) never write over each other's artifacts."""
    return state_dir() / "dbt"


def dbt_environment() -> dict[str, str]:
    """The variables profiles.yml reads; the password under dbt's secret prefix."""
    parts = parse_uri(dsn_for(ANALYTICS), ANALYTICS.env_var)
    return {
        "DBT_ACME_HOST": parts.host,
        "DBT_ACME_PORT": str(parts.port),
        "DBT_ACME_USER": parts.user,
        "DBT_ENV_SECRET_ACME_PASSWORD": parts.password,
        "DBT_ACME_DBNAME": parts.dbname,
        "DBT_TARGET_PATH": str(dbt_artifacts_dir() / "target"),
        "DBT_LOG_PATH": str(dbt_artifacts_dir() / "logs"),
    }


def dbt_args(command: str, *extra: str) -> list[str]:
    """The arguments of one dbt command; command may have words (`docs generate`)."""
    colours = [] if sys.stdout.isatty() else ["--no-use-colors"]
    return [
        *colours,
        *command.split(),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_ROOT),
        *extra,
    ]


@dataclass(frozen=True)
class BuildResult:
    seconds: float
    nodes: int


def run_dbt(command: str, *extra: str) -> BuildResult:
    """Runs one dbt command; a failure becomes a PipelineError naming what failed."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment())
    started = time.monotonic()
    with builds_one_at_a_time():
        outcome = dbtRunner().invoke(dbt_args(command, *extra))
    seconds = time.monotonic() - started
    if outcome.exception is not None:
        raise PipelineError(f"dbt {command} could not run: {outcome.exception}")
    # build and run give per-node results; docs generate gives a catalog instead.
    node_results = getattr(outcome.result, "results", None) or []
    if not outcome.success:
        failed = [r.node.name for r in node_results if str(r.status) in ("error", "fail")]
        raise PipelineError(
            f"dbt {command} failed ({', '.join(failed) or 'see the output above'}); "
            f"details in {dbt_artifacts_dir() / 'logs' / 'dbt.log'}"
        )
    return BuildResult(seconds, len(node_results))


@contextmanager
def builds_one_at_a_time():
    """Holds analytics_db's build lock, waiting for it: two builds at once (a manual run
    beside --follow) would apply the same incremental changes concurrently."""
    conn = connect(ANALYTICS, application_name="acme dbt build lock")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))
        yield
    finally:
        conn.close()  # ends the session, and so its lock


def dbt_build(full_refresh: bool = False) -> BuildResult:
    return run_dbt("build", *(["--full-refresh"] if full_refresh else []))
