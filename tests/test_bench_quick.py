"""The benchmark suite at its quick size (`make bench-quick`), so the benchmarks keep working.
Its figures mean little at this size and beside the other tests; each must be measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from connections.settings import PROJECT_ROOT


def test_the_quick_benchmarks_run_and_measure_every_figure():
    # The bench starts its own servers under its own ACME_HOME: none of the suite's settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACME_", "DBT_"))}
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    rows = json.loads((PROJECT_ROOT / "bench" / "results" / "quick.json").read_text())["rows"]
    full = json.loads((PROJECT_ROOT / "bench" / "results" / "latest.json").read_text())["rows"]
    assert len(rows) == len(full)
    for row in rows:
        assert isinstance(row["value"], int | float) and row["value"] >= 0, row
