"""`make demo` end to end, smaller, on servers of its own; its CSVs checked against the source."""

from __future__ import annotations

import json
import os
import subprocess

from connections.settings import PROJECT_ROOT
from tests.conftest import free_port
from tests.oracle import expected_csv

DEMO_CSVS = {
    "open_orders": "open_orders.csv",
    "top_delivery_dates": "top_delivery_dates.csv",
    "pending_items": "pending_items.csv",
    "top_customers": "top_customers.csv",
}


def run_demo(env: dict) -> str:
    demo = subprocess.run(
        ["make", "demo", "DEMO_ORDERS=400"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo finished in" in demo.stdout
    return demo.stdout


def test_make_demo_writes_the_four_reports_and_a_second_run_the_same(tmp_path):
    home, exports = tmp_path / "home", tmp_path / "exports"
    env = {
        **os.environ,
        "ACME_HOME": str(home),
        "ACME_EXPORT_DIR": str(exports),
        "ACME_FINANCE_PORT": str(free_port()),
        "ACME_ANALYTICS_PORT": str(free_port()),
    }
    env.pop("ACME_FINANCE_DSN", None)
    env.pop("ACME_ANALYTICS_DSN", None)
    try:
        run_demo(env)
        finance_uri = json.loads((home / "connections.json").read_text())["finance"]
        for report, name in DEMO_CSVS.items():
            written = (exports / name).read_text()
            assert written == expected_csv(finance_uri, report), f"{name} differs from source"
            assert len(written.splitlines()) > 1, f"{name} has no rows"
        first = {name: (exports / name).read_bytes() for name in DEMO_CSVS.values()}
        again = run_demo(env)
        assert "keeping the demo data of an earlier run" in again
        assert {name: (exports / name).read_bytes() for name in DEMO_CSVS.values()} == first
    finally:
        subprocess.run([*["make", "down"]], cwd=PROJECT_ROOT, env=env, capture_output=True)
