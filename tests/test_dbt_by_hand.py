"""dbt run by hand, as the README's "Run dbt yourself" shows: after `eval "$(acme local env)"`
plain `dbt run` and `dbt test` from dbt_project/ build the same warehouse."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from connections.settings import PROJECT_ROOT
from loader.copy_changes import load_changes
from tests.test_restore import FIRST, assert_verified

DBT = str(Path(sys.executable).parent / "dbt")


def exported(lines: str) -> dict[str, str]:
    """What `eval` of `export NAME=VALUE` lines would set."""
    found = {}
    for line in lines.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = shlex.split(value)[0] if value else ""
    return found


def test_plain_dbt_run_and_test_after_a_load(platform, tmp_path):
    platform.acme(*FIRST)
    load_changes()
    settings = exported(platform.acme("local", "env").stdout)
    assert {"DBT_ACME_HOST", "DBT_ACME_PORT", "DBT_ENV_SECRET_ACME_PASSWORD"} <= set(settings)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DBT_")},
        **settings,
        # dbt's artifacts in the test's folder, not in the checkout
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    for command in (["run"], ["test"]):
        result = subprocess.run(
            [DBT, *command, "--profiles-dir", ".."],
            cwd=PROJECT_ROOT / "dbt_project",
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:]
    assert_verified(platform)
