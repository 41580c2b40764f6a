"""`acme pipeline run --follow --metrics-port N --log-format json`: the Prometheus metrics
it serves, its JSON log lines, and the dashboard and alerts written against those metrics."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from connections.errors import BuildFailed, DatabaseUnavailable
from connections.settings import PROJECT_ROOT
from loader.copy_changes import LoadResult
from monitoring.lag import Lag
from monitoring.logs import DBT_JSON_ENVIRONMENT, configure_logging
from monitoring.metrics import PipelineMetrics, failed_in_build, serve_metrics
from monitoring.monitor import PipelineMonitor
from pipeline import cycle
from pipeline.dbt_build import BuildResult
from tests.conftest import ACME, free_port
from tests.pgbench.harness import CYCLE_LINE, RESUMED_LINE, RETRY_LINE

DEPLOY = PROJECT_ROOT / "deploy"
ORDERS = """
insert into operations.customers (customer_name) values ('Metrics Corp');
insert into operations.orders (customer_id, order_date, delivery_date, status)
select (select max(customer_id) from operations.customers), '2026-02-01', '2026-02-03',
       'PENDING'
from generate_series(1, %s);
"""


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics, by name (the metrics carry no labels but histogram `le`)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP text"
        for sample in family.samples:
            key = sample.name
            if "le" in sample.labels:
                key += f"{{le={sample.labels['le']}}}"
            samples[key] = sample.value
    return samples


def exposed_names() -> set[str]:
    """The series names an exporter serves, scraped from one with nothing recorded yet."""
    metrics, port = PipelineMetrics(), free_port()
    with serve_metrics(metrics, "127.0.0.1", port):
        return {name.split("{")[0] for name in scrape(port)}


def sample(metrics: PipelineMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


def change_count(platform) -> int:
    return platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]


class JsonFollower:
    """`acme pipeline run --follow` with metrics and JSON logs, its stdout read as it comes."""

    def __init__(self, port: int):
        self.port = port
        self.process = subprocess.Popen(
            [
                *ACME,
                "pipeline",
                "run",
                "--follow",
                "--verbose",
                "--interval",
                "0.5",
                "--metrics-port",
                str(port),
                "--metrics-host",
                "127.0.0.1",
                "--log-format",
                "json",
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_metrics(self, condition, timeout: float, what: str) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        samples: dict[str, float] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"acme exited {self.process.returncode} while waiting for {what}:\n"
                    + "\n".join(self.lines[-20:])
                    + "\nstderr:\n"
                    + self.process.stderr.read()
                )
            try:
                samples = scrape(self.port)
            except OSError:
                samples = {}  # not listening yet
            if samples and condition(samples):
                return samples
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last scrape: {samples}")

    def stop(self) -> str:
        """SIGTERM; returns stderr (stdout is the reader thread's)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=120)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=10)
        return self.process.stderr.read()


def json_lines(stdout: str) -> list[dict]:
    """Every line is one JSON object (dbt's own, at warn and above, included); ours, which
    carry an event, have the common fields."""
    entries = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    ours = [entry for entry in entries if "event" in entry]
    for entry in ours:
        assert {"ts", "level", "logger", "event", "message"} <= set(entry), entry
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", entry["ts"]), entry
    return ours


def assert_cycle_entry(entry: dict) -> None:
    assert entry["level"] == "info"
    assert entry["message"].startswith(f"loaded {entry['changes']} changes in ")
    assert entry["load_seconds"] >= 0 and entry["batches"] >= 0
    assert entry["lag_changes"] >= 0 and entry["lag_seconds"] >= 0
    assert entry["oldest_transaction_seconds"] >= 0
    if entry["build_seconds"] is not None:
        assert entry["build_seconds"] > 0 and entry["build_nodes"] > 0


def test_follow_serves_metrics_and_logs_json(platform):
    # One cycle without --follow: its batches and its summary as JSON lines.
    platform.finance(ORDERS, (5,))
    first = change_count(platform)
    once = platform.acme("pipeline", "run", "--log-format", "json")
    entries = json_lines(once.stdout)
    assert [entry["event"] for entry in entries] == ["batch", "cycle"], once.stdout
    batch, summary = entries
    assert batch["changes"] == summary["changes"] == first and batch["batches"] == 1
    assert_cycle_entry(summary)
    assert summary["build_seconds"] is not None and summary["lag_changes"] == 0

    platform.finance(ORDERS, (7,))
    written = change_count(platform) - first
    follower = JsonFollower(free_port())
    try:
        samples = follower.wait_for_metrics(
            lambda s: s["acme_changes_loaded_total"] == written and s["acme_lag_changes"] == 0,
            120,
            f"{written} changes loaded and no lag",
        )
    finally:
        err = follower.stop()
    assert follower.process.returncode == 0, err
    assert "Traceback" not in err

    assert samples["acme_lag_seconds"] == 0
    assert samples["acme_oldest_open_transaction_seconds"] == 0
    assert samples["acme_batches_loaded_total"] >= 1
    assert samples["acme_cycles_total"] >= 1
    assert samples["acme_cycle_failures_total"] == samples["acme_dbt_build_failures_total"] == 0
    assert samples["acme_load_duration_seconds_count"] >= 1
    assert samples["acme_dbt_build_duration_seconds_count"] >= 1
    assert samples["acme_dbt_build_duration_seconds_sum"] > 0
    assert 0 < time.time() - samples["acme_last_success_timestamp_seconds"] < 60
    assert 0 < time.time() - samples["acme_lag_measured_timestamp_seconds"] < 60
    assert {name.split("{")[0] for name in samples} == exposed_names()

    ours = json_lines("\n".join(follower.lines))
    cycles = [entry for entry in ours if entry["event"] == "cycle"]
    for entry in cycles:
        assert_cycle_entry(entry)
    assert sum(entry["changes"] for entry in cycles) == written
    assert cycles[0]["build_seconds"] is not None  # the first cycle of --follow builds
    assert cycles[-1]["lag_changes"] == 0
    events = [entry["event"] for entry in ours]
    assert "stopping" in events and events[-1] == "stopped", events
    assert ours[-1]["message"] == f"stopped cleanly after {len(cycles)} cycles"


def test_a_metrics_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*ACME, "pipeline", "run", "--follow", "--metrics-port", str(port)]
            + ["--metrics-host", "127.0.0.1"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            # No database is needed to fail: the port is checked before the first cycle.
            env={**os.environ, "ACME_HOME": str(tmp_path)},
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"Error: cannot serve metrics on 127.0.0.1:{port}: the port is in use; pick another "
        "--metrics-port or stop what uses it"
    )


def test_metrics_port_needs_follow():
    result = subprocess.run(
        [*ACME, "pipeline", "run", "--metrics-port", str(free_port())],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--metrics-port needs --follow" in result.stderr


class StillProbe:
    """A lag probe that needs no database."""

    def measure(self) -> Lag:
        return Lag(changes=0, seconds=0.0, oldest_transaction_seconds=0.0)


@pytest.fixture
def follow_log(monkeypatch):
    """Runs follow() in this process against a cycle that first finds analytics_db down, then
    loads 3 changes; returns its log, as written, and its metrics."""
    attempts = []

    def fake_cycle(**options):
        attempts.append(options)
        if len(attempts) == 1:
            raise DatabaseUnavailable(
                "analytics_db is not reachable at postgresql://x@127.0.0.1:1/analytics_db "
                "(connection refused): start it with `acme local up`, or point "
                "ACME_ANALYTICS_DSN at a running server"
            )
        signal.raise_signal(signal.SIGTERM)  # stops follow() after this cycle
        return cycle.CycleResult(
            LoadResult(changes=3, batches=1, seconds=0.25), BuildResult(seconds=1.5, nodes=9)
        )

    monkeypatch.setattr(cycle, "run_cycle", fake_cycle)
    # configure_logging("json") sets dbt's output variables; undone after the test, so that
    # the `acme` commands later tests start keep dbt's text output.
    # (setenv records the value to restore, even none; delenv alone records nothing then.)
    for name in DBT_JSON_ENVIRONMENT:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    def run(log_format: str):
        stream, metrics = io.StringIO(), PipelineMetrics()
        logger = configure_logging(log_format, stream)
        try:
            cycles = cycle.follow(0.1, 1000, observer=PipelineMonitor(metrics, StillProbe()))
        finally:
            logger.handlers.clear()
        assert cycles == 1 and len(attempts) == 2
        return stream.getvalue().splitlines(), metrics

    return run


def test_follow_logs_retries_as_text_lines_the_harness_matches(follow_log):
    lines, metrics = follow_log("text")
    assert len(lines) == 6, lines
    # The SIGTERM arrives during the second cycle, so its line comes before that cycle's.
    starting, retry, stopping, resumed, loaded, stopped = lines
    assert " first cycle: loading every change since the watermark" in starting
    assert RETRY_LINE.match(retry) and "analytics_db" in retry, retry
    assert retry.endswith("; retrying in 1s")
    assert RESUMED_LINE.match(resumed), resumed
    assert CYCLE_LINE.match(loaded) and "dbt build 9 nodes in 1.5s" in loaded, loaded
    assert loaded.endswith("; lag 0 changes, 0.0s")
    assert stopping.endswith(" received SIGTERM: stopping after this cycle")
    assert stopped.endswith(" stopped cleanly after 1 cycles")
    assert sample(metrics, "acme_cycle_failures_total") == 1
    assert sample(metrics, "acme_changes_loaded_total") == 3


def test_follow_logs_retries_as_json(follow_log):
    lines, _metrics = follow_log("json")
    entries = [json.loads(line) for line in lines]
    assert [(e["level"], e["event"]) for e in entries] == [
        ("info", "starting"),
        ("warning", "retry"),
        ("info", "stopping"),
        ("info", "resumed"),
        ("info", "cycle"),
        ("info", "stopped"),
    ]
    _starting, retry, _stopping, resumed, loaded, _stopped = entries
    assert retry["attempt"] == 1 and retry["retry_in_seconds"] == 1.0
    assert "start it with `acme local up`" in retry["message"]
    assert resumed["failed_attempts"] == 1
    assert loaded["changes"] == 3 and loaded["batches"] == 1
    assert loaded["load_seconds"] == 0.25 and loaded["changes_per_second"] == 12.0
    assert loaded["build_seconds"] == 1.5 and loaded["build_nodes"] == 9
    assert loaded["lag_changes"] == 0 and loaded["oldest_transaction_seconds"] == 0


def test_a_failure_raised_while_dbt_builds_counts_as_a_build_failure():
    try:
        try:
            raise BuildFailed("dbt build failed (fact_orders)")
        except BuildFailed as exc:
            raise DatabaseUnavailable("dbt build stopped: analytics_db restarted") from exc
    except DatabaseUnavailable as outage:
        during_build = outage
    assert failed_in_build(during_build)
    assert failed_in_build(BuildFailed("dbt test failed (is_current_state_of)"))
    assert not failed_in_build(DatabaseUnavailable("finance_db is not reachable"))

    metrics = PipelineMetrics()
    metrics.record_failure(during_build, None)
    metrics.record_failure(DatabaseUnavailable("finance_db is not reachable"), None)
    assert sample(metrics, "acme_cycle_failures_total") == 2
    assert sample(metrics, "acme_dbt_build_failures_total") == 1


def test_dashboard_and_alerts_use_only_exposed_metrics():
    exposed = exposed_names()
    dashboard_text = (DEPLOY / "grafana" / "acme-pipeline.json").read_text()
    dashboard = json.loads(dashboard_text)
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert expressions and all(expr.strip() for expr in expressions)

    alerts_text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    rules = [rule for group in yaml.safe_load(alerts_text)["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {
        "AcmeLagHigh",
        "AcmePipelineStalled",
        "AcmeBuildFailing",
        "AcmeLongTransactionHoldsWatermark",
    } <= names
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]

    used = set(re.findall(r"\bacme_[a-z0-9_]+", dashboard_text + alerts_text))
    assert used, "no acme_ metric in the dashboard or the alerts"
    assert used <= exposed, f"not exposed by the exporter: {sorted(used - exposed)}"
    # Each of the dashboard's subjects has a panel.
    for metric in (
        "acme_lag_changes",
        "acme_lag_seconds",
        "acme_changes_loaded_total",
        "acme_load_duration_seconds_bucket",
        "acme_dbt_build_duration_seconds_bucket",
        "acme_dbt_build_failures_total",
        "acme_oldest_open_transaction_seconds",
        "acme_last_success_timestamp_seconds",
    ):
        assert any(metric in expr for expr in expressions), metric

    scrape_config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape_config["rule_files"] == ["alerts.yml"]
    (job,) = scrape_config["scrape_configs"]
    assert job["job_name"] == "acme-pipeline"
    assert job["static_configs"][0]["targets"] == ["data-pipeline:9108"]
    assert all('job="acme-pipeline"' in r["expr"] for r in rules if "up{" in r["expr"])
