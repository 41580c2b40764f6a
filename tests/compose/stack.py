"""The project's docker-compose.yml run for real on this machine: Debian's docker-compose
talking to `podman system service`, on the stand-in images deploy/offline/build-images.sh
builds without a registry.

What podman keeps (images, containers, volumes, networks, its run-time state and locks, its
socket, temporary files) lives in a folder of the test's own, through CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF, so the machine's own podman is left as it was, and removing the
folder removes it. What still lands outside is listed in the README ("Without an image
registry, under podman")."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
BUILD_IMAGES = REPO / "deploy" / "offline" / "build-images.sh"
POSTGRES_IMAGE = "localhost/acme-postgres:18"
PYTHON_IMAGE = "localhost/acme-python:3.11"
SERVICES = ("transactions-db", "analytical-db", "data-pipeline")
HEALTHCHECK_INTERVAL = 5.0
VARIABLE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
# What the test needs from Debian; `make compose-test` installs it (scripts/).
TOOLS = ("podman", "runc", "mmdebstrap", "docker-compose", "netavark", "aardvark-dns")

# The deployment's podman settings, to which the stack adds where its own state goes.
CONTAINERS_CONF = REPO / "deploy" / "offline" / "containers.conf"
# Run-time state (tmp_dir: podman's default, /run/libpod, is removed by `system reset`) and
# locks (file locks under tmp_dir rather than the machine's shared-memory segment).
OWN_ENGINE_STATE = """\
[engine]
tmp_dir = "{root}/libpod"
lock_type = "file"
events_logfile_path = "{root}/events.log"
"""
OWN_NETWORKS = """\
[network]
network_config_dir = "{root}/networks"
"""
STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""


class PodmanStack:
    """A podman of the test's own under root, its API socket, and compose run against it."""

    def __init__(self, root: Path, project: str, env_file: Path):
        self.root = root
        self.project = project
        self.env_file = env_file
        self.socket = root / "podman.sock"
        for folder in ("networks", "tmp"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        settings = CONTAINERS_CONF.read_text()
        for table, own in (("[engine]\n", OWN_ENGINE_STATE), ("[network]\n", OWN_NETWORKS)):
            assert settings.count(table) == 1, f"deploy/offline/containers.conf: no {table}"
            settings = settings.replace(table, own.format(root=root))
        (root / "containers.conf").write_text(settings)
        (root / "storage.conf").write_text(STORAGE_CONF.format(root=root))
        self.env = {
            **environment_without(compose_variables()),
            # build-images.sh's work folder and podman build's temporary files
            "TMPDIR": str(root / "tmp"),
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
            "DOCKER_HOST": f"unix://{self.socket}",
        }
        self._service: subprocess.Popen | None = None
        self._healthchecks: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- podman ----------------------------------------------------------------------------

    def podman(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return run(["podman", *args], self.env, check=check, timeout=timeout)

    def start_service(self) -> None:
        with open(self.root / "service.log", "wb") as log:
            self._service = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self._service.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"podman system service did not start: {self.service_log()}")
            time.sleep(0.1)

    def service_log(self) -> str:
        return (self.root / "service.log").read_text(errors="replace")[-2000:]

    def build_images(self) -> None:
        """The stand-ins for postgres:18 and python:3.11-slim (deploy/offline/)."""
        run(["sh", str(BUILD_IMAGES)], {**self.env, "ENGINE": "podman"}, timeout=900)

    def run_healthchecks(self) -> None:
        """Runs each service's healthcheck every second. podman schedules healthchecks with
        systemd timers, and no systemd runs here, so without this a container would stay
        "starting" and compose would wait on `condition: service_healthy` for ever. The
        checks run are the compose file's own (`podman healthcheck run`)."""

        def loop() -> None:
            while not self._stopping.wait(1.0):
                for service in SERVICES:
                    run(
                        ["podman", "healthcheck", "run", service], self.env, check=False, timeout=30
                    )

        self._healthchecks = threading.Thread(target=loop, daemon=True)
        self._healthchecks.start()

    def health(self, service: str) -> str:
        result = self.podman(
            "inspect", "--format", "{{.State.Health.Status}}", service, check=False
        )
        return result.stdout.strip()

    def running(self) -> list[str]:
        return self.podman("ps", "--format", "{{.Names}}").stdout.split()

    def exec(
        self, service: str, *command: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        return self.podman("exec", service, *command, check=check, timeout=timeout)

    # --- compose ---------------------------------------------------------------------------

    def compose(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        return run(
            [
                "docker-compose",
                "--file",
                str(COMPOSE_FILE),
                "--project-name",
                self.project,
                "--env-file",
                str(self.env_file),
                *args,
            ],
            self.env,
            check=check,
            timeout=timeout,
            cwd=REPO,
        )

    # --- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stops whatever is still running and removes every image, container, volume and
        network this podman made; the caller removes the folder."""
        self._stopping.set()
        if self._healthchecks is not None:
            self._healthchecks.join(timeout=120)
        self.podman("rm", "--all", "--force", "--time", "5", check=False)
        self.podman("system", "reset", "--force", check=False, timeout=300)
        if self._service is not None:
            self._service.terminate()
            try:
                self._service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._service.kill()
                self._service.wait()


def run(
    command: list[str], env: dict, check: bool = True, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Runs command in a session of its own, so a timeout kills everything it started (the
    build script's mmdebstrap, pip and podman build), not only the command."""
    with subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def compose_variables() -> set[str]:
    return {braced or bare for braced, bare in VARIABLE.findall(COMPOSE_FILE.read_text())}


def environment_without(names: set[str]) -> dict[str, str]:
    """The caller's environment without what would change what compose resolves: a variable
    exported in the shell wins over the env file (TRANSACTIONS_DB_PUBLISH=5432 would publish
    on every interface)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in names and not name.startswith("COMPOSE_")
    }


def missing_tools() -> list[str]:
    found = {tool: shutil.which(tool) or Path(f"/usr/lib/podman/{tool}").exists() for tool in TOOLS}
    return [tool for tool, present in found.items() if not present]
