"""Crash safety: the loader is killed with SIGKILL again and again while pgbench keeps
writing, and each restart carries on from the stored watermark: nothing lost, nothing
staged twice, and `acme verify` passes at the end.

Where a kill lands is made certain, not left to luck, from the database side and without
any hook in the loader: test-only triggers in analytics_db (tests/pgbench/harness.py,
LoaderPauses) hold the loader's transaction still at a chosen point of a chosen batch:
  * copy   - inside the COPY into staging.change_log, after its first rows were inserted
             (pg_stat_progress_copy shows the COPY and the rows it has processed);
  * commit - after the COPY, in the watermark's upsert, the batch's last statement before
             COMMIT;
  * random - no pause: killed a random moment after it connected, and where it was is
             read from pg_stat_activity and pg_stat_progress_copy just before.
The pause holds only the loader's own transaction; once it is killed the pause is lifted,
and its server session ends when it notices the client is gone. A few kills also hit the
whole `acme pipeline run --follow` process group (loader and in-process dbt).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

from connections.settings import PROJECT_ROOT
from tests.pgbench.harness import (
    BackgroundWorkload,
    Follower,
    LoaderPauses,
    assert_every_change_staged_once,
    seed_reference_data,
    sized,
    verify_passes,
)

LOADER_KILLS = sized(16, 60)
FOLLOW_KILLS = sized(2, 6)
BATCH_SIZE = 20
RANDOM_KILL_WITHIN_SECONDS = 0.05
PAUSE_TIMEOUT_SECONDS = 30

LOADER = (
    "from loader.copy_changes import load_changes; "
    f"result = load_changes(batch_size={BATCH_SIZE}); "
    "print(result.changes, result.batches)"
)


@dataclass(frozen=True)
class Kill:
    target: str  # "loader" or "follow"
    point: str  # where the kill landed
    evidence: str


def start_loader() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LOADER],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen) -> bool:
    """SIGKILL to the process group; True when it landed (the loader was still running).
    A loader that had already exited must have finished, or been refused the lock because
    a killed loader's session still held it."""
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)
    _out, err = process.communicate()
    if alive and process.returncode == -signal.SIGKILL:
        return True
    assert process.returncode == 0 or "another loader is running" in err, err
    return False


def kill_at_pause(analytics: LoaderPauses, point: str, at_batch: int) -> Kill:
    """Starts loaders until one is held at the pause, then kills it there."""
    wait_until_no_loader_session(analytics)
    analytics.pause(point, at_batch)
    deadline = time.monotonic() + PAUSE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        loader = start_loader()
        while loader.poll() is None and time.monotonic() < deadline:
            session = analytics.loader_session()
            if analytics.holds(point, session):
                rows_before = staged_rows(analytics)
                assert kill_group(loader), "the held loader was not running"
                analytics.pause(None)
                evidence = describe(session)
                assert staged_rows(analytics) == rows_before
                return Kill("loader", POINT_NAMES[point], evidence)
            time.sleep(0.005)
        kill_group(loader)
        time.sleep(0.05)
    raise AssertionError(f"no loader reached the {point} pause in {PAUSE_TIMEOUT_SECONDS}s")


POINT_NAMES = {"copy": "mid-COPY", "commit": "between COPY and commit"}


def describe(session) -> str:
    state, query, copied_rows, _wait = session
    text = f"{state}: {' '.join(query.split())[:40]}"
    if copied_rows is not None:
        text += f" ({copied_rows} rows copied)"
    return text


def classify(session) -> str:
    """Where the loader was, from its analytics_db session (its last statement)."""
    if session is None:
        return "starting (no session yet)"
    state, query, copied_rows, _wait = session
    query = query.lstrip()
    if copied_rows is not None:
        return "mid-COPY"
    if state not in ("active", "idle in transaction"):
        return "between batches"
    if query.startswith(
        (
            "copy staging.change_log",
            "insert into staging.load_batches",
            "insert into staging.load_state",
        )
    ):
        return "between COPY and commit"
    if query.startswith("select nextval"):
        return "reading a page from finance_db"
    return "inside a batch"


def kill_at_random(analytics: LoaderPauses, rng: random.Random) -> Kill | None:
    """Kills the loader a random moment (up to RANDOM_KILL_WITHIN_SECONDS) after its
    session on analytics_db appeared; where it was is read just before."""
    analytics.pause(None)
    wait_until_no_loader_session(analytics)
    loader = start_loader()
    deadline = time.monotonic() + 10
    while analytics.loader_session() is None and loader.poll() is None:
        assert time.monotonic() < deadline, "the loader never connected"
        time.sleep(0.002)
    time.sleep(rng.uniform(0.0, RANDOM_KILL_WITHIN_SECONDS))
    session = analytics.loader_session()
    if not kill_group(loader):
        return None
    return Kill("loader", classify(session), describe(session) if session else "-")


def kill_follow(analytics: LoaderPauses, rng: random.Random, during_dbt: bool) -> Kill:
    """Kills `acme pipeline run --follow` while dbt builds, or while its loader is at work
    in a later cycle, a random moment after that was seen."""
    analytics.pause(None)
    follower = Follower.start("--batch-size", str(BATCH_SIZE * 10))

    def at_work() -> bool:
        if during_dbt:
            return analytics.dbt_busy()
        return bool(follower.cycles()) and classify(analytics.loader_session()) in (
            "mid-COPY",
            "between COPY and commit",
            "inside a batch",
        )

    follower.wait_for(at_work, 120, "dbt to build" if during_dbt else "a load under way")
    cycles_seen = len(follower.cycles())
    time.sleep(rng.uniform(0.0, 0.5 if during_dbt else 0.02))
    if during_dbt and len(follower.cycles()) == cycles_seen:
        where = "during dbt build"  # the cycle's line comes after its build
    else:
        where = classify(analytics.loader_session())
    follower.kill()
    return Kill("follow", where, f"{len(follower.cycles())} cycles finished before")


def wait_until_no_loader_session(analytics: LoaderPauses, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while analytics.loader_session() is not None:
        assert time.monotonic() < deadline, "a killed loader's session outlived its client"
        time.sleep(0.1)


def staged_rows(analytics: LoaderPauses) -> int:
    return analytics.one("select count(*) from staging.change_log")[0]


def check_after_kill(platform, analytics: LoaderPauses, previous: tuple[int, int]) -> tuple:
    """What the killed loader committed is whole, and the watermark is exactly its end."""
    staged, distinct, batches_say = analytics.one(
        "select count(*), count(distinct change_id), "
        "(select coalesce(sum(change_count), 0) from staging.load_batches) "
        "from staging.change_log"
    )
    watermark = analytics.one("select last_txid, last_change_id from staging.load_state")
    newest = analytics.one(
        "select txid, change_id from staging.change_log order by txid desc, change_id desc limit 1"
    )
    assert staged == distinct == batches_say, (staged, distinct, batches_say)
    assert tuple(watermark) == tuple(newest), (watermark, newest)
    assert tuple(watermark) >= previous, (watermark, previous)
    below = platform.finance(
        "select count(*) from cdc.change_log where (txid, change_id) <= (%s::text::xid8, %s)",
        tuple(watermark),
        fetch=True,
    )[0][0]
    assert below == staged, f"{below} changes at or below the watermark, {staged} staged"
    return tuple(watermark)


def test_loader_killed_again_and_again_resumes_from_its_watermark(platform):
    seed_reference_data(platform)
    first = start_loader()
    assert first.communicate()[1] == "" and first.returncode == 0
    analytics = LoaderPauses(platform.analytics_uri).install()
    rng = random.Random(20260701)
    kills: list[Kill] = []
    exited_first = advanced = 0
    watermark = check_after_kill(platform, analytics, (0, 0))
    started = time.monotonic()
    try:
        with BackgroundWorkload(platform, clients=4, rate=150, seed=7) as workload:
            time.sleep(1.0)
            while len([k for k in kills if k.target == "loader"]) < LOADER_KILLS:
                kind = ("copy", "commit", "random")[len(kills) % 3]
                if kind == "random":
                    kill = kill_at_random(analytics, rng)
                else:
                    kill = kill_at_pause(analytics, kind, at_batch=rng.randint(1, 3))
                if kill is None:
                    exited_first += 1
                    continue
                kills.append(kill)
                before, watermark = watermark, check_after_kill(platform, analytics, watermark)
                advanced += watermark > before
            for number in range(FOLLOW_KILLS):
                kills.append(kill_follow(analytics, rng, during_dbt=number % 2 == 0))
                before, watermark = watermark, check_after_kill(platform, analytics, watermark)
                advanced += watermark > before
        assert workload.failed_runs == 0, workload.runs[-1].output
        assert workload.processed > 0
    finally:
        analytics.pause(None)
    # The writers have stopped: once the killed loaders' sessions are gone, a last,
    # undisturbed run lands the rest and builds.
    wait_until_no_loader_session(analytics)
    platform.pipeline_run()
    check_after_kill(platform, analytics, watermark)
    analytics.remove()
    report = verify_passes(platform)
    staged = assert_every_change_staged_once(platform)
    loader_kills = [k for k in kills if k.target == "loader"]
    landed = Counter(k.point for k in loader_kills)
    assert len(loader_kills) >= LOADER_KILLS
    assert landed["mid-COPY"] >= LOADER_KILLS // 3
    assert landed["between COPY and commit"] >= LOADER_KILLS // 3
    # The restarted loaders made progress between kills, each from where the last stopped.
    assert advanced >= LOADER_KILLS // 3, advanced
    print(
        f"{len(loader_kills)} loader kills ({dict(landed)}), {exited_first} loaders finished "
        f"before their random kill, {FOLLOW_KILLS} --follow kills "
        f"({', '.join(k.point for k in kills if k.target == 'follow')}); the watermark "
        f"advanced between {advanced} of {len(kills)} kills; {workload.processed} pgbench "
        f"transactions; {staged} changes staged exactly once; {report['rows_verified']} rows "
        f"verified; {time.monotonic() - started:.0f}s"
    )
    print("\n".join(f"  {k.target} killed {k.point}: {k.evidence}" for k in kills))
