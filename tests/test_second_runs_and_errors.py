"""What a user meets on a second run and on a mistake: a run with nothing new skips the
build, --follow stops on credentials that waiting cannot fix, and each wrong input is one
line with the fix."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
import time
from functools import partial

from cli.docs import DocsServer, QuietSiteHandler
from connections.settings import PROJECT_ROOT
from tests.conftest import ACME

ORDERS = """
insert into operations.customers (customer_name) values ('Acme Corp');
insert into operations.orders (customer_id, order_date, delivery_date, status)
values (1, '2026-01-01', '2026-01-02', 'PENDING');
"""


def one_error_line(result) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_run_with_nothing_new_skips_the_build_until_the_project_changes(platform):
    platform.finance(ORDERS)
    assert "dbt build" in platform.acme("pipeline", "run").stdout
    again = platform.acme("pipeline", "run").stdout
    assert "loaded 0 changes" in again and "nothing new, no build" in again, again
    assert "Running with dbt" not in again
    # A model edited since the last build is built, though no change landed.
    project_file = PROJECT_ROOT / "dbt_project" / "dbt_project.yml"
    os.utime(project_file)
    assert "dbt build" in platform.acme("pipeline", "run").stdout
    # So is a warehouse missing a report.
    platform.analytics("drop view reports.top_customers")
    assert "dbt build" in platform.acme("pipeline", "run").stdout


def test_follow_stops_at_once_on_refused_credentials(platform):
    bad = platform.finance_uri.replace(":1234@", ":wrong@")
    started = time.monotonic()
    result = subprocess.run(
        [*ACME, "pipeline", "run", "--follow"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "ACME_FINANCE_DSN": bad},
        timeout=120,
    )
    assert result.returncode == 1
    assert "refused the credentials" in one_error_line(result)
    assert "retrying" not in result.stdout + result.stderr
    assert time.monotonic() - started < 60


def test_capture_status_after_uninstall_exits_1(platform):
    platform.acme("capture", "uninstall")
    result = platform.acme("capture", "status", check=False)
    assert result.returncode == 1 and "no table is captured" in result.stdout


def test_a_missing_database_is_named_once(platform):
    missing = platform.finance_uri.rsplit("/", 1)[0] + "/no_such_db"
    result = platform.acme("db", "check", check=False, env={"ACME_FINANCE_DSN": missing})
    assert result.returncode == 1
    assert 'database "no_such_db" does not exist' in result.stdout
    assert "finance_db: finance_db:" not in result.stdout


def test_a_retention_too_long_is_a_usage_error(platform):
    result = platform.acme("capture", "prune", "--older-than", "1000000000000d", check=False)
    assert result.returncode == 2 and "longer than 100 years" in result.stderr
    assert "database error" not in result.stderr


def test_local_up_help_shows_the_port_that_applies():
    result = subprocess.run(
        [*ACME, "local", "up", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "ACME_FINANCE_PORT": "61234"},
        timeout=60,
    )
    flat = " ".join(result.stdout.split())
    assert "[default: 61234 from $ACME_FINANCE_PORT]" in flat, result.stdout
    assert "$ACME_ANALYTICS_PORT" in flat and "[default: 55433]" in flat


def test_a_browser_leaving_mid_download_is_no_traceback(tmp_path, capfd):
    (tmp_path / "index.html").write_bytes(b"x" * (8 << 20))
    server = DocsServer(("127.0.0.1", 0), partial(QuietSiteHandler, directory=str(tmp_path)))
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        for _ in range(3):
            client = socket.create_connection(server.server_address)
            client.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
            client.recv(1024)
            # Closed with a reset, as a browser tab that goes away mid-download.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        time.sleep(1)
    finally:
        server.shutdown()
        server.server_close()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "BrokenPipe" not in captured.err, captured.err


def test_an_idle_follow_says_so_once_a_minute(platform):
    platform.finance(ORDERS)
    follower = subprocess.Popen(
        [*ACME, "pipeline", "run", "--follow", "--interval", "0.1"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follower.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        # The first cycle's line comes when its build (models and tests) has finished.
        while not any(" loaded " in line and "dbt build" in line for line in list(lines)):
            assert time.monotonic() < deadline and follower.poll() is None, "".join(lines)
            time.sleep(0.1)
        time.sleep(4)  # idle cycles every 0.1 s: 10 at the very least
    finally:
        follower.terminate()
        follower.wait(timeout=120)
        reader.join(timeout=10)
    out = "".join(lines)
    assert "first cycle: loading every change since the watermark" in out
    cycles = [line for line in out.splitlines() if " loaded " in line]
    assert "dbt build" in cycles[0]
    idle = [line for line in cycles[1:] if "(idle: " in line]
    assert len(cycles) <= 3 and len(idle) == 1, out
    stopped = [line for line in out.splitlines() if "stopped cleanly after" in line]
    assert stopped and int(stopped[0].split("after ")[1].split()[0]) >= 10, out
