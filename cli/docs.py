"""`acme docs generate` and `acme docs serve`: dbt's documentation site for the project."""

from __future__ import annotations

import errno
import json
import signal
import socket
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import click

from pipeline.dbt_build import dbt_artifacts_dir, run_dbt

# What the site is made of: dbt's single-page app and the two files it fetches. Nothing else
# in the target folder (compiled SQL, run results) is served.
SITE_FILES = ("index.html", "manifest.json", "catalog.json")


def site_dir() -> Path:
    return dbt_artifacts_dir() / "target"


@click.group()
def docs() -> None:
    """dbt documentation of the warehouse: models, columns, lineage and exposures.

    \b
    The site shows every model of dbt_project/ (staging -> marts -> reports), each column
    with its description and type, the tests, the lineage graph from the change log
    (source cdc.change_log) to the four reports, and the CLI's exports as exposures.

    \b
      acme docs serve        generate the site and browse it on http://127.0.0.1:8080
      acme docs generate     only write it, to .acme/dbt/target/ ($ACME_HOME/dbt/target/)
    """


@docs.command()
def generate() -> None:
    """Write the docs site (index.html, manifest.json, catalog.json) to .acme/dbt/target/.

    Runs `dbt docs generate` against analytics_db: the catalog (column types, row counts)
    is read from the built warehouse, so run `acme pipeline run` first. The folder is
    $ACME_HOME/dbt/target/ when ACME_HOME is set. Browse the site with
    `acme docs serve --no-generate`: opened from disk, index.html cannot load its data.
    """
    generate_site()
    click.echo(f"docs written to {site_dir()}; browse them with `acme docs serve`")


@docs.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. The default is reachable from this machine only; "
    "0.0.0.0 (or ::) serves every network interface.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="TCP port to listen on; 0 picks a free one.",
)
@click.option(
    "--generate/--no-generate",
    "regenerate",
    default=True,
    show_default=True,
    help="Run `dbt docs generate` first, or serve the site last generated.",
)
def serve(host: str, port: int, regenerate: bool) -> None:
    """Generate the docs site and serve it over HTTP until Ctrl-C.

    \b
    Open the printed URL in a browser. Useful pages of the site:
      #!/overview                                the project's design and report definitions
      #!/source/source.acme.cdc.change_log       the change log the warehouse is built from
      #!/model/model.acme.fact_orders            a model: description, columns, SQL, tests
      #!/exposure/exposure.acme.top_customers    a CLI export and the models it reads
    The round button at the bottom right of a page ("View Lineage Graph") draws the
    page's lineage; on the source page, everything built from the change log.

    \b
    Examples:
      acme docs serve                           generate, then http://127.0.0.1:8080
      acme docs serve --port 9000               another port
      acme docs serve --no-generate             serve what was generated last
      acme docs serve --host 0.0.0.0            reachable from other machines too
    """
    if regenerate:
        generate_site()
    elif not all((site_dir() / name).is_file() for name in SITE_FILES):
        raise click.ClickException(
            f"no generated docs site in {site_dir()}: run `acme docs serve` without "
            "--no-generate (or `acme docs generate`) first"
        )
    server = docs_server(host, port)
    url = site_url(host, server.server_address[1])
    click.echo(f"serving the dbt docs of analytics_db at {url} (Ctrl-C stops)")
    serve_until_stopped(server)
    click.echo("docs server stopped")


def generate_site() -> None:
    """`dbt docs generate` against analytics_db, with a hint when nothing was built yet."""
    run_dbt("docs generate")
    catalog_path = site_dir() / "catalog.json"
    try:
        built = json.loads(catalog_path.read_text()).get("nodes")
    except (OSError, ValueError):
        built = None
    if not built:
        click.echo(
            "note: the warehouse has no built models yet, so the site shows no column types "
            "or row counts; run `acme pipeline run` first for a complete catalog"
        )


class QuietSiteHandler(SimpleHTTPRequestHandler):
    """Serves the site's files only, uncached, without a log line per request."""

    def do_GET(self) -> None:
        if self.site_file() is None:
            self.send_error(404, "not part of the docs site")
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if self.site_file() is None:
            self.send_error(404, "not part of the docs site")
            return
        super().do_HEAD()

    def site_file(self) -> str | None:
        name = urlsplit(self.path).path.lstrip("/") or "index.html"
        return name if name in SITE_FILES else None

    def end_headers(self) -> None:
        # A regenerated site must show at once, not what the browser kept.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *_args) -> None:
        pass


class DocsServer(ThreadingHTTPServer):
    daemon_threads = True  # an open browser connection never holds up Ctrl-C

    def handle_error(self, request, client_address) -> None:
        """A client that goes away mid-download (a closed tab, curl stopped) is no error of
        the server's: no traceback for it. Anything else is still reported."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class DocsServerV6(DocsServer):
    address_family = socket.AF_INET6


def docs_server(host: str, port: int) -> DocsServer:
    """The HTTP server of the site's folder, bound; a busy port is one clear line."""
    handler = partial(QuietSiteHandler, directory=str(site_dir()))
    server_class = DocsServerV6 if ":" in host else DocsServer
    try:
        return server_class((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is already in use (another `acme docs serve`?): "
                f"stop that or choose another port, e.g. --port {port + 1 if port else 8081}"
            ) from exc
        if exc.errno == errno.EACCES:
            raise click.ClickException(
                f"not allowed to listen on port {port}: ports below 1024 need root; "
                "choose another with --port"
            ) from exc
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
            "check --host is an address of this machine"
        ) from exc


def site_url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_until_stopped(server: DocsServer) -> None:
    """Serves until Ctrl-C (SIGINT) or SIGTERM, then closes the listening socket.

    The server runs in a thread and the signal handlers only set an event, so a signal never
    lands in the middle of a request; both handlers are set here, so a server started in the
    background (where a shell may leave SIGINT ignored) still stops on either signal."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in STOP_SIGNALS}
    serving = threading.Thread(target=server.serve_forever, name="docs server", daemon=True)
    serving.start()
    try:
        while not stop.wait(0.5) and serving.is_alive():
            pass
    finally:
        server.shutdown()
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
