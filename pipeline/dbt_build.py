"""Runs the dbt project in-process, with the profile's settings taken from analytics_db's URI."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connections.connect import connected
from connections.dbt_project import DBT_PROJECT_DIR
from connections.errors import BuildFailed
from connections.locks import BUILD_LOCK_KEY
from connections.settings import ANALYTICS, PROJECT_ROOT, dsn_for, parse_uri, state_dir
from exporter.reports import REPORTS
from pipeline.marts import INCREMENTAL_MODEL_NAMES

REPORT_RELATIONS = tuple(report.relation for report in REPORTS.values())
# dbt's unit tests check the models' logic on fixtures, not the data: acme's builds and data
# tests leave them out, as dbt advises for production; `dbt test --select test_type:unit` (or
# any dbt build by hand) runs them.
WITHOUT_UNIT_TESTS = ("--exclude-resource-type", "unit_test")


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
    command: str = "build"

    def describe(self) -> str:
        return f"dbt {self.command} {self.nodes} nodes in {self.seconds:.1f}s"


def run_dbt(command: str, *extra: str, manifest=None) -> BuildResult:
    """Runs one dbt command; a failure becomes BuildFailed, naming what failed. With a
    manifest (parse_manifest()), dbt skips parsing the project."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment())
    started = time.monotonic()
    with builds_one_at_a_time():
        outcome = dbtRunner(manifest=manifest).invoke(dbt_args(command, *extra))
    seconds = time.monotonic() - started
    if outcome.exception is not None:
        raise BuildFailed(f"dbt {command} could not run: {outcome.exception}")
    # build and run give per-node results; docs generate gives a catalog instead.
    node_results = getattr(outcome.result, "results", None) or []
    if not outcome.success:
        full_build_marker().unlink(missing_ok=True)
        failed = [r.node.name for r in node_results if str(r.status) in ("error", "fail")]
        raise BuildFailed(
            f"dbt {command} failed ({', '.join(failed) or 'see the output above'}); "
            f"details in {dbt_artifacts_dir() / 'logs' / 'dbt.log'}"
        )
    if command == "build" and "--select" not in extra:
        full_build_marker().parent.mkdir(parents=True, exist_ok=True)
        full_build_marker().touch()
    return BuildResult(seconds, len(node_results), command)


def full_build_marker() -> Path:
    """Touched after every successful full `dbt build` of this environment."""
    return dbt_artifacts_dir() / "last-full-build"


def warehouse_is_current() -> bool:
    """Whether a `dbt build` now would change nothing: the last full build succeeded, no
    project file changed since, every incremental model has applied the newest load, and
    every report view exists. A one-shot `acme pipeline run` that landed nothing then skips
    the build."""
    marker = full_build_marker()
    if not marker.exists():
        return False
    built_at = marker.stat().st_mtime
    if any(
        path.stat().st_mtime > built_at
        for path in DBT_PROJECT_DIR.rglob("*")
        if path.is_file() and "target" not in path.parts
    ):
        return False
    with connected(ANALYTICS, application_name="acme pipeline") as conn, conn, conn.cursor() as cur:
        cur.execute(
            """
            select to_regclass('staging.applied_loads') is not null
                and (
                    select count(*) from staging.applied_loads
                    where through_load_id >= (
                        select coalesce(max(load_id), 0) from staging.load_batches
                    ) and to_regclass('analytics.' || model_name) is not null
                    and model_name = any(%s)
                ) = %s
                and %s = (select count(to_regclass(name)) from unnest(%s::text[]) as name)
            """,
            (
                list(INCREMENTAL_MODEL_NAMES),
                len(INCREMENTAL_MODEL_NAMES),
                len(REPORT_RELATIONS),
                list(REPORT_RELATIONS),
            ),
        )
        return cur.fetchone()[0]


@contextmanager
def builds_one_at_a_time() -> Iterator[None]:
    """Holds analytics_db's build lock for one acme dbt invocation, waiting for it. The dbt
    project's own per-model lock keeps any two invocations from applying changes to one model
    at once; this one keeps acme's own invocations (a manual run beside --follow) apart whole,
    as two full builds at once would replace the same views and share dbt's target folder."""
    with connected(ANALYTICS, application_name="acme dbt build lock") as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))
        yield  # closing the connection ends the session, and so the lock


def dbt_build(full_refresh: bool = False) -> BuildResult:
    return run_dbt("build", *WITHOUT_UNIT_TESTS, *(["--full-refresh"] if full_refresh else []))


def parse_manifest():
    """The parsed project, for run_dbt(manifest=...) to skip parsing on every call."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment())
    outcome = dbtRunner().invoke(dbt_args("parse", "--quiet"))
    if not outcome.success:
        raise BuildFailed(f"dbt parse failed: {outcome.exception or 'see dbt.log'}")
    return outcome.result


# The models a cycle of --follow brings up to date: the marts are incremental tables that the
# new changes move; staging and reports are views, current as soon as the marts are. The
# history models (every version of every row) are incremental too, but no live report reads
# them, so --follow may build them less often.
INCREMENTAL_MODELS = "config.materialized:incremental"
MART_MODELS = "path:models/marts"
HISTORY_MODELS = "path:models/history"


class FollowBuilds:
    """How `--follow` builds the warehouse, so a change is in the reports seconds after it
    commits. The first build (and the first after a failed cycle) is a full `dbt build`:
    every model and data test. After it, a cycle that landed changes runs only the
    incremental marts, with the project parsed once, and the history models with them once
    history_interval seconds have passed since they were last built (a cycle with nothing
    new builds them then too, if they are behind). The data tests, which read whole tables,
    run every test_interval seconds instead of every cycle, with the history brought up to
    date first, and stop --follow on a failure.
    A project changed on disk is picked up by restarting --follow."""

    def __init__(
        self,
        test_interval: float,
        history_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.test_interval = test_interval
        self.history_interval = history_interval
        self.clock = clock
        self.manifest = None
        self.tested_at = self.history_built_at = 0.0
        self.untested = self.history_behind = False

    def build(self, changes_landed: bool, full_build_owed: bool) -> BuildResult | None:
        if full_build_owed or self.manifest is None:
            self.manifest = self.manifest or parse_manifest()
            result = run_dbt("build", "--quiet", *WITHOUT_UNIT_TESTS, manifest=self.manifest)
            self.tested_at = self.history_built_at = self.clock()
            self.untested = self.history_behind = False
            return result
        result = None
        self.untested |= changes_landed
        self.history_behind |= changes_landed
        tests_due = self.untested and self.clock() - self.tested_at >= self.test_interval
        # The data tests hold each history to its mart, so they never run on a history behind.
        history_due = self.history_behind and (
            tests_due or self.clock() - self.history_built_at >= self.history_interval
        )
        if changes_landed or history_due:
            if changes_landed and history_due:
                selection = INCREMENTAL_MODELS
            else:
                selection = MART_MODELS if changes_landed else HISTORY_MODELS
            result = run_dbt("run", "--quiet", "--select", selection, manifest=self.manifest)
            if history_due:
                self.history_built_at, self.history_behind = self.clock(), False
        if tests_due:
            tests = run_dbt("test", "--quiet", *WITHOUT_UNIT_TESTS, manifest=self.manifest)
            self.tested_at, self.untested = self.clock(), False
            result = tests if result is None else combined(result, tests)
        return result


def combined(first: BuildResult, second: BuildResult) -> BuildResult:
    return BuildResult(
        first.seconds + second.seconds,
        first.nodes + second.nodes,
        f"{first.command} + {second.command}",
    )
