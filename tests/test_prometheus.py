"""deploy/prometheus/ run for real: promtool checks the configuration and the rules, and a real
Prometheus scraping `acme pipeline run --follow --metrics-port` fires the "pipeline down" alert
when the pipeline stops and the long-transaction alert while a transaction holds the
watermark, and clears them after. Prometheus and promtool come from Debian
(scripts/install-system-packages.sh)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import yaml

from connections.settings import PROJECT_ROOT
from tests.conftest import free_port
from tests.pgbench.harness import Follower
from tests.test_pipeline import wait_for

PROMETHEUS_DIR = PROJECT_ROOT / "deploy" / "prometheus"
# The deployed rules wait minutes; the test's copy waits seconds, with every expression kept.
FAST = {
    "AcmePipelineDown": {"for": "2s"},
    "AcmeLongTransactionHoldsWatermark": {
        "for": "2s",
        "expr": "acme_oldest_open_transaction_seconds > 3",
    },
}


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: run scripts/install-system-packages.sh (Debian's prometheus)"
    return found


def test_promtool_accepts_the_configuration_and_the_rules():
    for command, path in (("config", "prometheus.yml"), ("rules", "alerts.yml")):
        result = subprocess.run(
            [tool("promtool"), "check", command, str(PROMETHEUS_DIR / path)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def fast_rules(folder: Path) -> Path:
    """deploy's alerts.yml with the FAST waits and thresholds, checked by promtool too."""
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    changed = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in FAST:
                expected = FAST[rule["alert"]]
                if "expr" in expected:
                    # the deployed expression with only its threshold lowered
                    assert rule["expr"].rsplit(">", 1)[0] == expected["expr"].rsplit(">", 1)[0]
                rule.update(expected)
                changed += 1
    assert changed == len(FAST)
    path = folder / "alerts.yml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    return path


def start_prometheus(folder: Path, metrics_port: int) -> tuple[subprocess.Popen, int]:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    config["rule_files"] = [str(fast_rules(folder))]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(folder / "prometheus.log", "w") as log:
        process = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return process, port


def firing(port: int) -> set[str]:
    """The alerts Prometheus reports firing (pending ones are not)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5) as response:
        alerts = json.load(response)["data"]["alerts"]
    return {alert["labels"]["alertname"] for alert in alerts if alert["state"] == "firing"}


def wait_until(condition, what: str, timeout: float = 90) -> None:
    """wait_for(), with a Prometheus that does not answer yet (still starting) as not yet."""

    def answered() -> bool:
        try:
            return condition()
        except OSError:
            return False

    wait_for(answered, timeout, what)


def test_a_real_prometheus_fires_and_clears_the_alerts(platform, tmp_path):
    metrics_port = free_port()
    prometheus, port = start_prometheus(tmp_path, metrics_port)
    follower = None
    holder = platform.finance_connection()
    try:
        follower = Follower.start("--metrics-port", str(metrics_port))
        follower.wait_for_cycles(1, 0.0, built=True)
        wait_until(lambda: firing(port) == set(), "Prometheus up with no alert firing")

        # A transaction that wrote, held open: it holds the watermark.
        with holder.cursor() as cur:
            cur.execute("insert into operations.customers (customer_name) values ('held')")
        wait_until(
            lambda: "AcmeLongTransactionHoldsWatermark" in firing(port),
            "the long-transaction alert firing",
        )
        holder.rollback()
        wait_until(
            lambda: "AcmeLongTransactionHoldsWatermark" not in firing(port),
            "the long-transaction alert cleared",
        )

        output = follower.stop()
        assert follower.process.returncode == 0, output[-3000:]
        wait_until(lambda: "AcmePipelineDown" in firing(port), "the pipeline-down alert firing")
        follower = Follower.start("--metrics-port", str(metrics_port))
        wait_until(
            lambda: "AcmePipelineDown" not in firing(port), "the pipeline-down alert cleared"
        )
    finally:
        holder.close()
        if follower is not None and follower.process.poll() is None:
            follower.stop()
        prometheus.terminate()
        prometheus.wait(timeout=30)
