"""dbt run by hand, as the README's "Run dbt yourself" shows: after `eval "$(acme local env)"`
plain `dbt run` and `dbt test` from dbt_project/ build the same warehouse, and a `dbt build`
by hand waits for a model another invocation is building (the lock is the dbt project's
own), beside `--follow` too."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from connections.locks import MODEL_LOCK_CLASS
from connections.settings import PROJECT_ROOT
from loader.copy_changes import load_changes
from pipeline.dbt_build import dbt_artifacts_dir, dbt_build
from tests.conftest import ACME
from tests.pgbench.harness import Follower
from tests.test_restore import FIRST, assert_verified

DBT = str(Path(sys.executable).parent / "dbt")


def exported(lines: str) -> dict[str, str]:
    """What `eval` of `export NAME=VALUE` lines would set."""
    found = {}
    for line in lines.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = shlex.split(value)[0] if value else ""
    return found


def by_hand_environment(platform, folder: Path) -> dict[str, str]:
    """The environment `eval "$(acme local env)"` gives a shell, dbt's artifacts in folder."""
    settings = exported(platform.acme("local", "env").stdout)
    assert {"DBT_ACME_HOST", "DBT_ACME_PORT", "DBT_ENV_SECRET_ACME_PASSWORD"} <= set(settings)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DBT_")},
        **settings,
        # dbt's artifacts in the test's folder, not in the checkout
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }


def dbt(env: dict[str, str], *command: str) -> subprocess.Popen:
    """The dbt CLI, run from dbt_project/ as the README shows."""
    return subprocess.Popen(
        [DBT, *command, "--profiles-dir", ".."],
        cwd=PROJECT_ROOT / "dbt_project",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def unit_tests_run(target: Path) -> dict[str, str]:
    """The dbt unit tests the last command whose artifacts are in target ran: name -> status."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].rsplit(".", 1)[-1]: r["status"]
        for r in results
        if r["unique_id"].startswith("unit_test.")
    }


def unit_tests_declared(target: Path) -> set[str]:
    """The dbt unit tests the project declares, from the manifest of a command in target."""
    manifest = json.loads((target / "manifest.json").read_text())
    return {test["name"] for test in manifest["unit_tests"].values()}


def test_plain_dbt_run_and_test_after_a_load(platform, tmp_path):
    """dbt test by hand runs the data tests and the unit tests; acme's builds leave the unit
    tests out (dbt_build.WITHOUT_UNIT_TESTS)."""
    platform.acme(*FIRST)
    load_changes()
    env = by_hand_environment(platform, tmp_path)
    for command in (["run"], ["test"]):
        finished(dbt(env, *command))
    declared = unit_tests_declared(tmp_path / "target")
    assert len(declared) >= 6
    assert unit_tests_run(tmp_path / "target") == dict.fromkeys(declared, "pass")
    assert_verified(platform)
    dbt_build()
    assert unit_tests_run(dbt_artifacts_dir() / "target") == {}


def test_a_dbt_build_by_hand_waits_for_a_model_being_built(platform, tmp_path):
    platform.acme(*FIRST)
    platform.pipeline_run()
    platform.acme("simulate", "--orders", "20", "--seed", "3")
    load_changes()
    (newest,) = platform.analytics("select max(load_id) from staging.load_batches", fetch=True)[0]
    # Another invocation is building fact_orders: its transaction holds the model's lock.
    holder = psycopg2.connect(platform.analytics_uri)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s, hashtext('fact_orders'))", (MODEL_LOCK_CLASS,))
        build = dbt(by_hand_environment(platform, tmp_path), "build")
        deadline = time.monotonic() + 180
        while not platform.analytics(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted "
            "and classid = %s and objsubid = 2",
            (MODEL_LOCK_CLASS,),
            fetch=True,
        )[0][0]:
            assert build.poll() is None, f"dbt build did not wait:\n{build.stdout.read()}"
            assert time.monotonic() < deadline, "dbt build never reached fact_orders"
            time.sleep(0.1)
        applied = dict(
            platform.analytics(
                "select model_name, through_load_id from staging.applied_loads", fetch=True
            )
        )
        assert applied["fact_orders"] < newest, "fact_orders was built while locked"
        # It waits before reading the model at all: a lock on the table held while waiting
        # would deadlock with a --full-refresh that holds the model's lock and renames it.
        assert platform.analytics(
            "select count(*) from pg_locks as held where held.relation = "
            "'analytics.fact_orders'::regclass and held.pid in (select waiting.pid "
            "from pg_locks as waiting where waiting.locktype = 'advisory' "
            "and not waiting.granted and waiting.classid = %s)",
            (MODEL_LOCK_CLASS,),
            fetch=True,
        ) == [(0,)]
    finally:
        holder.close()
    finished(build)
    assert platform.analytics(
        "select through_load_id from staging.applied_loads where model_name = 'fact_orders'",
        fetch=True,
    ) == [(newest,)]
    assert_verified(platform)


def test_dbt_builds_by_hand_beside_follow(platform, tmp_path):
    platform.acme(*FIRST)
    env = by_hand_environment(platform, tmp_path)
    follower = Follower.start("--test-interval", "0")
    try:
        follower.wait_for_cycles(1, 0.0, built=True)
        # A build by hand while a workload writes and --follow loads and builds it.
        workload = subprocess.Popen(
            [*ACME, "simulate", "--orders", "40", "--concurrency", "2", "--seed", "0"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
        )
        finished(dbt(env, "build"))
        assert workload.wait(timeout=300) == 0
        since = time.monotonic()
        follower.wait_for_cycles(2, since)
    finally:
        output = follower.stop()
    assert follower.process.returncode == 0, output[-3000:]
    platform.pipeline_run()
    assert_verified(platform)


def test_a_build_of_an_older_range_keeps_the_newer_state(platform, tmp_path):
    """An invocation that reaches a model after a newer one built it (here: its range fixed
    by hand below what acme applied) derives the model through the newer range."""
    platform.acme(*FIRST)
    platform.pipeline_run()
    (older,) = platform.analytics("select max(load_id) from staging.load_batches", fetch=True)[0]
    platform.acme("simulate", "--orders", "20", "--seed", "5")
    platform.pipeline_run()
    (newer,) = platform.analytics("select max(load_id) from staging.load_batches", fetch=True)[0]
    assert newer > older
    env = by_hand_environment(platform, tmp_path)
    finished(dbt(env, "run", "--vars", f"{{through_load_id: {older}}}"))
    applied = platform.analytics(
        "select distinct through_load_id from staging.applied_loads", fetch=True
    )
    assert applied == [(newer,)]
    assert_verified(platform)
