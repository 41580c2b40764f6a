"""Timing helpers: every comparison is run interleaved, and its median taken."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connections.settings import PROJECT_ROOT, parse_uri
from localpg.binaries import binary


def turn_order(rep: int, names: list) -> list:
    """The order of one repetition's measurements: rotated by one each repetition, so each
    takes each place in turn (two alternate which goes first) and a slow patch of the machine
    falls on every side."""
    shift = rep % len(names)
    return names[shift:] + names[:shift]


def interleaved(reps: int, runs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Runs each measurement once per repetition, in turn order; returns every figure of
    each."""
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for rep in range(reps):
        for name in turn_order(rep, list(runs)):
            figures[name].append(runs[name]())
    return figures


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    max_rss_mb: float
    stdout: str


def run_child(args: list[str], env: dict[str, str] | None = None, memory: bool = False) -> ChildRun:
    """Runs a command; its wall time, and with memory its peak resident memory
    (bench/peak_rss.py, whose own start-up then adds to the time)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bench.peak_rss", *args] if memory else args,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    peak_mb = 0.0
    if memory:
        last_line = result.stderr.strip().splitlines()[-1]
        peak_mb = int(last_line.removeprefix("peak_rss_kib=")) / 1024
    return ChildRun(seconds, peak_mb, result.stdout)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def psql(uri: str, *args: str) -> list[str]:
    return [binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", uri, *args]


OLTP_SCRIPT = Path(__file__).resolve().parent / "pgbench" / "oltp.sql"
ORM_SCRIPT = Path(__file__).resolve().parent / "pgbench" / "orm.sql"


def oltp_pgbench(
    uri: str,
    clients: int,
    threads: int,
    seconds: int,
    variables: dict[str, int],
    *rate: str,
    script: Path = OLTP_SCRIPT,
) -> list[str]:
    """pgbench running a workload script (bench/pgbench/) against uri; rate: extra options
    such as -R."""
    parts = parse_uri(uri, "pgbench")
    args = [binary("pgbench"), "-n", "-f", str(script), "-c", str(clients)]
    args += ["-j", str(threads), "-T", str(int(seconds)), *rate]
    args += ["-h", parts.host, "-p", str(parts.port), "-U", parts.user]
    for name, value in variables.items():
        args += ["-D", f"{name}={value}"]
    return [*args, parts.dbname]


def pgbench_environment(uri: str) -> dict[str, str]:
    parts = parse_uri(uri, "pgbench")
    return {"PGPASSWORD": parts.password}


def print_json(value) -> None:
    print(json.dumps(value))


def server_cpu_seconds(data_dir: Path) -> float:
    """CPU the server has used: its postmaster's own and that of every child it has reaped
    (a backend's CPU is counted here once its session ends). Read before and after a run
    whose sessions have all ended, the difference is what the run cost the server."""
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime..cstime are fields 14 to 17.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")
