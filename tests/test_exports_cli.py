"""The export commands as a user runs them: default names, `-`, paths given with a folder,
links, and paths that cannot be written, against a real warehouse."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ACME
from tests.oracle import expected_csv

ROWS = """
insert into operations.customers (customer_name) values ('Acme Corp'), ('Globex');
insert into operations.orders (customer_id, order_date, delivery_date, status) values
    (1, '2026-01-01 10:00:00', '2026-01-05 09:00:00', 'PENDING'),
    (2, '2026-01-01 11:00:00', '2026-01-06 09:00:00', 'PROCESSING');
"""


def acme_in(folder, *args: str) -> subprocess.CompletedProcess:
    """acme run from another folder, so relative paths resolve against it."""
    return subprocess.run(
        [*ACME, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))},
        timeout=300,
    )


def test_exports_go_where_the_user_says_and_nowhere_else(platform, tmp_path):
    platform.finance(ROWS)
    platform.acme("pipeline", "run")
    exports = tmp_path / "exports"
    env = {"ACME_EXPORT_DIR": str(exports)}

    platform.acme("open_orders", env=env)
    platform.acme("open_orders", "--summary", env=env)
    assert (exports / "open_orders.csv").read_text() == expected_csv(
        platform.finance_uri, "open_orders"
    )
    assert (exports / "open_orders_summary.csv").read_text() == expected_csv(
        platform.finance_uri, "open_orders_summary"
    )

    work = tmp_path / "work"
    work.mkdir()
    result = acme_in(work, "pending_items", "-o", "./pi.csv")
    assert result.returncode == 0, result.stderr
    assert (work / "pi.csv").exists() and not (exports / "pi.csv").exists()

    streamed = acme_in(work, "top_customers", "-o", "-")
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == expected_csv(platform.finance_uri, "top_customers")
    assert "wrote 1 rows to -" in streamed.stderr  # one customer with a pending order
    assert not (work / "-").exists()

    (work / "README.md").write_text("a file")
    refused = acme_in(work, "top_customers", "-o", "README.md/x.csv")
    assert refused.returncode == 1 and "README.md is not a folder" in refused.stderr
    assert "Traceback" not in refused.stderr
