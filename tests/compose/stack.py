"""The project's docker-compose.yml run for real on this machine: Debian's docker-compose
talking to `podman system service`, on the stand-in images deploy/offline/build-images.sh
builds without a registry.

Everything podman keeps (images, containers, volumes, networks, its socket) lives in a folder
of the test's own, through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF, so nothing of the
machine's own podman is read or changed, and removing the folder leaves nothing behind."""

from __future__ import annotations

import os
import shutil
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
# What the test needs from Debian; `make compose-test` installs it (scripts/).
TOOLS = ("podman", "runc", "mmdebstrap", "docker-compose", "netavark", "aardvark-dns")

# The deployment's podman settings; the [network] table comes last, so a line appended
# belongs to it.
CONTAINERS_CONF = REPO / "deploy" / "offline" / "containers.conf"
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
        (root / "networks").mkdir(parents=True, exist_ok=True)
        (root / "containers.conf").write_text(
            CONTAINERS_CONF.read_text() + f'network_config_dir = "{root}/networks"\n'
        )
        (root / "storage.conf").write_text(STORAGE_CONF.format(root=root))
        self.env = {
            **os.environ,
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
            self._healthchecks.join(timeout=60)
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
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def missing_tools() -> list[str]:
    found = {tool: shutil.which(tool) or Path(f"/usr/lib/podman/{tool}").exists() for tool in TOOLS}
    return [tool for tool, present in found.items() if not present]
