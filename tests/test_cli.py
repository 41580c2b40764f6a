"""The CLI teaches with --help and meets bad input with one clear line and no traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ACME, PROJECT_ROOT, free_port


def assert_one_clear_line(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_wrong_password(platform):
    bad = platform.finance_uri.replace(":1234@", ":wrong@")
    result = platform.acme("pipeline", "run", check=False, env={"ACME_FINANCE_DSN": bad})
    assert_one_clear_line(result, "refused the credentials", "ACME_FINANCE_DSN")
    assert "wrong" not in result.stderr, "the password must not be printed"


def test_server_down(platform):
    down = f"postgresql://analytics_user:x@127.0.0.1:{free_port()}/analytics_db"
    result = platform.acme("top_customers", check=False, env={"ACME_ANALYTICS_DSN": down})
    assert_one_clear_line(result, "analytics_db is not reachable", "acme local up")


def test_db_check_reports_both_and_fails_on_one(platform):
    ok = platform.acme("db", "check")
    assert "finance_db: ok" in ok.stdout and "analytics_db: ok" in ok.stdout
    down = f"postgresql://finance_db_user:x@127.0.0.1:{free_port()}/finance_db"
    bad = platform.acme("db", "check", check=False, env={"ACME_FINANCE_DSN": down})
    assert bad.returncode == 1
    assert "finance_db is not reachable" in bad.stdout and "analytics_db: ok" in bad.stdout


def test_no_database_configured(platform, tmp_path):
    result = platform.acme(
        "pipeline", "status", check=False, env={"ACME_HOME": str(tmp_path / "nothing")}
    )
    assert_one_clear_line(result, "no analytics_db configured", "acme local up")


def test_capture_not_installed(platform):
    platform.acme("capture", "uninstall", "--purge")
    result = platform.acme("pipeline", "run", check=False)
    assert_one_clear_line(result, "capture is not installed", "acme capture install")
    assert platform.acme("capture", "status", check=False).returncode == 1


def test_report_before_any_build(platform, tmp_path):
    out = tmp_path / "early.csv"
    result = platform.acme("open_orders", "--output", str(out), check=False)
    assert_one_clear_line(result, "does not exist yet", "acme pipeline run")
    assert not out.exists()


@pytest.mark.parametrize("target", ["/proc/acme-report.csv", "{tmp}/missing/folder/x.csv", "{tmp}"])
def test_unwritable_output_leaves_no_file(platform, tmp_path, target):
    platform.finance("insert into operations.customers (customer_name) values ('a')")
    platform.acme("pipeline", "run")
    path = target.format(tmp=tmp_path)
    before = set(os.listdir(tmp_path))
    result = platform.acme("open_orders", "--output", path, check=False)
    assert_one_clear_line(result)
    assert set(os.listdir(tmp_path)) == before
    assert not os.path.exists("/proc/acme-report.csv")


def test_bare_file_name_goes_to_the_export_folder(platform):
    platform.finance("insert into operations.customers (customer_name) values ('a')")
    platform.acme("pipeline", "run")
    result = platform.acme("open_orders", "--output", "bare.csv")
    expected = os.path.join(os.environ["ACME_EXPORT_DIR"], "bare.csv")
    assert f"wrote 0 rows to {expected}" in result.stdout
    assert Path(expected).read_text() == "order_id,customer_id,order_date,delivery_date,status\n"


def test_failed_write_midway_leaves_no_file(platform, tmp_path):
    platform.acme("simulate", "--orders", "300", "--seed", "5")
    platform.acme("pipeline", "run")
    out = tmp_path / "big.csv"
    # A file-size limit of 1 KiB makes the write fail part of the way through the COPY.
    result = subprocess.run(
        ["bash", "-c", f"ulimit -f 1; exec {' '.join(ACME)} open_orders --output {out}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert_one_clear_line(result, "cannot write", "nothing was written")
    assert os.listdir(tmp_path) == []
