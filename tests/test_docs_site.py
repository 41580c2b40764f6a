"""The dbt docs site: every model, column, source and exposure is described; `acme docs serve`
serves the site; and a real headless Chromium draws the lineage graph from the change log
through staging and the marts to each report and its export."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from itertools import takewhile
from pathlib import Path

import pytest

from tests.conftest import ACME, PROJECT_ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the rest keep it off the network and quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = PROJECT_ROOT / "tests" / "artifacts" / "docs_lineage.png"

SOURCE_ID = "source.acme.cdc.change_log"
REPORTS = [
    "open_orders",
    "open_orders_summary",
    "top_delivery_dates",
    "pending_items",
    "top_customers",
    "order_lifecycle",
]
# Each report model and the CLI export (dbt exposure) that reads it.
EXPORT_OF = {
    "open_orders": "acme open_orders",
    "open_orders_summary": "acme open_orders",
    "top_delivery_dates": "acme top_delivery_dates",
    "pending_items": "acme pending_items",
    "top_customers": "acme top_customers",
    "order_lifecycle": "acme order_lifecycle",
}

WORKLOAD = """
insert into operations.customers (customer_name) values ('Acme Corp'), ('Globex Inc');
insert into operations.products (product_name, barcode, unit_price) values
    ('Widget', '111', 2.50), ('Gadget', '222', 10);
insert into operations.orders (customer_id, order_date, delivery_date, status) values
    (1, '2026-01-01 10:30:00', '2026-01-05 09:00:00', 'PENDING'),
    (2, '2026-01-02 08:15:00', '2026-01-05 09:00:00', 'PROCESSING'),
    (2, '2026-01-03 12:00:00', '2026-01-07 10:00:00', 'COMPLETED');
insert into operations.order_items (order_id, product_id, quantity) values
    (1, 1, 5), (1, 2, 1), (2, 2, 3), (3, 1, 2);
update operations.orders set status = 'PENDING' where order_id = 2;
"""


# --- every node and column is described (no database: `dbt parse`) ---------------------------


@pytest.fixture(scope="module")
def parsed_manifest(tmp_path_factory) -> dict:
    """The project's manifest from `dbt parse`, which reads the yml and doc blocks only."""
    target = tmp_path_factory.mktemp("dbt-parse")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dbt.cli.main import cli; cli()",
            "--no-use-colors",
            "parse",
            "--no-partial-parse",
            "--project-dir",
            str(PROJECT_ROOT / "dbt_project"),
            "--profiles-dir",
            str(PROJECT_ROOT),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DBT_ENV_SECRET_ACME_PASSWORD": "unused-parse-does-not-connect",
            "DBT_TARGET_PATH": str(target),
            "DBT_LOG_PATH": str(target / "logs"),
        },
        timeout=300,
    )
    assert result.returncode == 0, f"dbt parse failed:\n{result.stdout}\n{result.stderr}"
    return json.loads((target / "manifest.json").read_text())


def project_models(manifest: dict) -> dict[str, dict]:
    return {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["package_name"] == "acme"
    }


def undescribed(manifest: dict) -> list[str]:
    """Every model, model column, source, source column and exposure without a description."""
    missing = []
    for uid, model in project_models(manifest).items():
        if not model["description"].strip():
            missing.append(uid)
        if not model["columns"]:
            missing.append(f"{uid}: no columns documented")
        missing += [
            f"{uid}.{name}"
            for name, col in model["columns"].items()
            if not col["description"].strip()
        ]
    for uid, source in manifest["sources"].items():
        if not source["source_description"].strip():
            missing.append(f"source {source['source_name']}")
        if not source["description"].strip():
            missing.append(uid)
        missing += [
            f"{uid}.{name}"
            for name, col in source["columns"].items()
            if not col["description"].strip()
        ]
    missing += [uid for uid, exp in manifest["exposures"].items() if not exp["description"].strip()]
    return missing


def test_every_model_column_source_and_exposure_is_described(parsed_manifest):
    assert undescribed(parsed_manifest) == [], "describe these in dbt_project/models/**/*.yml"
    assert set(project_models(parsed_manifest)) >= {f"model.acme.{r}" for r in REPORTS}
    assert SOURCE_ID in parsed_manifest["sources"]
    exposures = {exp["label"] for exp in parsed_manifest["exposures"].values()}
    assert exposures == set(EXPORT_OF.values())


def test_overview_explains_the_cdc_design_the_reports_and_the_exposures(parsed_manifest):
    overview = parsed_manifest["docs"]["doc.acme.__overview__"]["block_contents"]
    for heading in (
        "## Capture and loading",
        "## Current state from changes",
        "## Report definitions",
        "## Exposures",
    ):
        assert heading in overview
    for report in REPORTS:
        assert f"`{report}`" in overview


def assert_catalog_matches_yml(manifest: dict, catalog: dict) -> None:
    """Every column of every built table or view is documented in the yml, and the yml
    documents no column the warehouse does not have."""
    problems = []
    nodes = {**project_models(manifest), **manifest["sources"]}
    for uid, node in nodes.items():
        built = catalog["nodes"].get(uid) or catalog["sources"].get(uid)
        if built is None:
            problems.append(f"{uid}: not in the catalog (not built?)")
            continue
        in_warehouse = {name.lower() for name in built["columns"]}
        in_yml = {name.lower() for name in node["columns"]}
        problems += [f"{uid}.{c}: built but not documented" for c in sorted(in_warehouse - in_yml)]
        problems += [f"{uid}.{c}: documented but not built" for c in sorted(in_yml - in_warehouse)]
    assert problems == [], "\n".join(problems)


# --- acme docs serve --------------------------------------------------------------------------


def start_docs_server(args: list[str], log: Path, env: dict | None = None):
    """`acme docs serve ...` in the background; returns the process and the URL it prints."""
    with log.open("w") as out:
        server = subprocess.Popen(
            [*ACME, "docs", "serve", *args],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"serving the dbt docs of analytics_db at (http://\S+)", log.read_text())
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            raise AssertionError(f"acme docs serve exited {server.returncode}:\n{log.read_text()}")
        time.sleep(0.2)
    server.kill()
    raise AssertionError(f"acme docs serve printed no URL in 120 s:\n{log.read_text()}")


def stop_docs_server(server, log: Path, stop_signal: int) -> None:
    server.send_signal(stop_signal)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        raise AssertionError("acme docs serve did not stop on its signal") from None
    output = log.read_text()
    assert server.returncode == 0, output
    assert "Traceback" not in output
    assert "docs server stopped" in output


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_serve_without_generating_serves_only_the_site_and_refuses_a_busy_port(tmp_path):
    env = {"ACME_HOME": str(tmp_path / "home")}
    site = tmp_path / "home" / "dbt" / "target"
    site.mkdir(parents=True)
    # Without a generated site, --no-generate says what to run.
    missing = subprocess.run(
        [*ACME, "docs", "serve", "--no-generate"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no generated docs site" in missing.stderr and "acme docs generate" in missing.stderr

    for name in ("index.html", "manifest.json", "catalog.json", "run_results.json"):
        (site / name).write_text(f"<{name}>")
    log = tmp_path / "serve.log"
    server, url = start_docs_server(["--no-generate", "--port", "0"], log, env)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert http_get(url) == (200, b"<index.html>")
        assert http_get(url + "manifest.json?cb=1") == (200, b"<manifest.json>")
        assert http_get(url + "catalog.json") == (200, b"<catalog.json>")
        assert http_get(url + "run_results.json")[0] == 404, "only the site's files are served"
        assert http_get(url + "../target/run_results.json")[0] == 404

        port = url.rstrip("/").rsplit(":", 1)[1]
        busy = subprocess.run(
            [*ACME, "docs", "serve", "--no-generate", "--port", port],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
        )
        lines = [line for line in busy.stderr.splitlines() if line.strip()]
        assert busy.returncode == 1 and len(lines) == 1, busy.stderr
        assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
        assert "--port" in lines[0]
        assert "GET /" not in log.read_text(), "requests must not be logged"
    finally:
        stop_docs_server(server, log, signal.SIGTERM)


# --- the site in a real browser ---------------------------------------------------------------


def browser_driver():
    """Playwright's sync_playwright with Debian's Chromium present, or a failure saying how to
    install what is missing: the docs site is part of the product, so this never skips."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run make venv (pip install -e .[dev])")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run make system-packages (Debian's chromium)")
    return sync_playwright


def plain_text(markdown: str) -> str:
    """A description as the browser shows it: markdown marks removed, whitespace collapsed."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = text.replace("`", "").replace("**", "")
    return " ".join(text.split())


def opening_words(markdown: str, count: int = 6) -> str:
    return " ".join(plain_text(markdown).split()[:count])


def wait_for_page_text(page, fragments: list[str], where: str, timeout: float = 15) -> None:
    """Waits until the page shows every fragment; fails naming the ones it does not show.
    Column descriptions are shown as written, others rendered: both are compared as plain."""
    deadline = time.monotonic() + timeout
    while True:
        shown = plain_text(page.evaluate("() => document.body.innerText"))
        absent = [fragment for fragment in fragments if fragment not in shown]
        if not absent:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{where} does not show: {absent}")
        time.sleep(0.1)


READ_GRAPH = """() => {
    const cy = window.graph;
    const inside = (n) => {
        const box = n.renderedBoundingBox();
        return box.x1 >= 0 && box.y1 >= 0 && box.x2 <= cy.width() && box.y2 <= cy.height();
    };
    return {
        nodes: cy.nodes().filter((n) => n.visible()).map((n) => ({
            id: n.id(),
            label: n.data('label'),
            resource_type: n.data('resource_type'),
            fqn: n.data('fqn') || [],
            on_screen: inside(n),
            x: Math.round(n.renderedPosition('x')),
            y: Math.round(n.renderedPosition('y')),
        })),
        edges: cy.edges().filter((e) => e.visible()).map((e) => [e.source().id(), e.target().id()]),
    };
}"""


def settled_graph(page, timeout: float = 20) -> dict:
    """The drawn lineage graph once its layout has stopped moving."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        graph = page.evaluate(READ_GRAPH)
        if graph["nodes"] and graph == previous:
            return graph
        previous = graph
        time.sleep(0.4)
    raise AssertionError(f"the lineage graph did not settle in {timeout} s: {previous}")


def layer_of(node: dict) -> str:
    """source, staging, marts or reports (the model's folder), or exposure."""
    if node["resource_type"] == "model":
        return node["fqn"][1]
    return node["resource_type"]


def paths_between(edges: list[list[str]], start: str, end: str) -> Iterator[list[str]]:
    children = defaultdict(list)
    for parent, child in edges:
        children[parent].append(child)

    def walk(path: list[str]) -> Iterator[list[str]]:
        if path[-1] == end:
            yield path
            return
        for child in children[path[-1]]:
            if child not in path:
                yield from walk([*path, child])

    yield from walk([start])


# The layers built from staging: the marts and the history models.
DERIVED_LAYERS = {"marts", "history"}


def in_layer_order(layers: list[str]) -> bool:
    """source, staging, one or more derived layers (a mart may be derived from others, as
    agg_pending_items_by_product is), then reports only."""
    marts = len(list(takewhile(lambda layer: layer in DERIVED_LAYERS, layers[2:])))
    return (
        layers[:2] == ["source", "staging"]
        and marts >= 1
        and all(layer == "reports" for layer in layers[2 + marts :])
    )


def assert_lineage_from_change_log_to_every_report(graph: dict) -> None:
    nodes = {node["id"]: node for node in graph["nodes"]}
    by_label = {node["label"]: node for node in graph["nodes"]}
    assert SOURCE_ID in nodes and nodes[SOURCE_ID]["label"] == "cdc.change_log", sorted(by_label)
    off_screen = [node["label"] for node in graph["nodes"] if not node["on_screen"]]
    assert off_screen == [], f"drawn outside the graph's canvas: {off_screen}"
    for report in REPORTS:
        report_id = f"model.acme.{report}"
        assert report_id in nodes, f"{report} is not drawn; drawn: {sorted(by_label)}"
        assert nodes[report_id]["label"] == report
        layered = [
            [layer_of(nodes[uid]) for uid in path]
            for path in paths_between(graph["edges"], SOURCE_ID, report_id)
        ]
        assert any(map(in_layer_order, layered)), (
            f"no drawn path change_log -> staging -> marts -> {report}: {layered}"
        )
        export = by_label.get(EXPORT_OF[report])
        assert export is not None and export["resource_type"] == "exposure", EXPORT_OF[report]
        assert [report_id, export["id"]] in graph["edges"], f"{report} -> {EXPORT_OF[report]}"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1600, 1000)
    assert len(data) > 40_000, f"{path} is only {len(data)} bytes: an empty page?"


def check_lineage_graph(page, url: str) -> None:
    """Opens the change log's page, its lineage graph full screen, and reads what is drawn."""
    page.goto(f"{url}#!/source/{SOURCE_ID}")
    page.wait_for_function("() => window.graph !== undefined", timeout=30_000)
    page.click("a[ng-click='onLauncherClick()']")  # the "View Lineage Graph" button
    page.click("a[ng-click='showExpanded()']")  # "View Fullscreen": +source:cdc.change_log+
    page.wait_for_function("() => location.hash.includes('g_v=1')", timeout=10_000)
    graph = settled_graph(page)
    assert_lineage_from_change_log_to_every_report(graph)
    page.mouse.move(800, 980)  # off the buttons, so no tooltip covers the graph
    page.wait_for_selector(".tooltip", state="detached", timeout=5_000)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert_png(SCREENSHOT)


def check_descriptions_shown(page, url: str, manifest: dict) -> None:
    """Each model, source and exposure page shows its description and its columns'."""
    page.goto(f"{url}#!/overview")
    wait_for_page_text(
        page,
        [
            "Capture and loading",
            "Current state from changes",
            "Report definitions",
            "Exposures: the CLI's exports",
        ],
        "the overview",
    )
    pages = [("model", uid, node) for uid, node in project_models(manifest).items()]
    pages += [("source", uid, node) for uid, node in manifest["sources"].items()]
    pages += [("exposure", uid, node) for uid, node in manifest["exposures"].items()]
    for kind, uid, node in pages:
        page.evaluate(f"() => {{ location.hash = '#!/{kind}/{uid}'; }}")
        fragments = [opening_words(node["description"])]
        fragments += [opening_words(col["description"]) for col in node.get("columns", {}).values()]
        wait_for_page_text(page, fragments, f"the page of {uid}")


def test_docs_site_draws_the_lineage_from_the_change_log_to_every_report(platform, tmp_path):
    sync_playwright = browser_driver()  # before the build: fail fast when Chromium is missing
    platform.finance(WORKLOAD)
    platform.pipeline_run()
    log = tmp_path / "serve.log"
    server, url = start_docs_server(["--port", str(free_port())], log)
    try:
        assert url.startswith("http://127.0.0.1:")
        manifest = json.loads(http_get(url + "manifest.json")[1])
        catalog = json.loads(http_get(url + "catalog.json")[1])
        assert_catalog_matches_yml(manifest, catalog)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page_errors = []
                page.on("pageerror", lambda error: page_errors.append(str(error)))
                check_descriptions_shown(page, url, manifest)
                check_lineage_graph(page, url)
                assert page_errors == [], page_errors
            finally:
                browser.close()
    finally:
        stop_docs_server(server, log, signal.SIGINT)
