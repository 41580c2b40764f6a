"""`acme local up|down|status`: the two local servers, their data under the state folder.

Each server is bootstrapped with the seed's user as its superuser, as the docker-compose
deployment's images do, so the rest of the platform sees the same roles either way.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from connections.errors import LocalServerError
from connections.settings import recorded_uris_path, state_dir
from localpg import os_user
from localpg.binaries import binary

START_TIMEOUT_SECONDS = 60

SERVER_SETTINGS = """
# Set by acme local up.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
timezone = 'UTC'
log_timezone = 'UTC'
wal_level = logical
max_connections = 200
# Two-phase commit is allowed, so `acme pipeline status` can be shown naming a prepared
# transaction that holds the loader's horizon back.
max_prepared_transactions = 10
"""


@dataclass(frozen=True)
class LocalServer:
    key: str
    database: str
    user: str
    password_env: str
    default_password: str
    port_env: str
    default_port: int

    @property
    def folder(self) -> Path:
        return state_dir() / self.key

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def password(self) -> str:
        return os.environ.get(self.password_env, self.default_password)

    def port(self, requested: int | None = None) -> int:
        if requested:
            return requested
        return int(os.environ.get(self.port_env, self.default_port))

    def uri(self, port: int, database: str | None = None) -> str:
        return (
            f"postgresql://{self.user}:{self.password()}@127.0.0.1:{port}/"
            f"{database or self.database}"
        )


# The seed's passwords are local-development defaults; the environment overrides them.
FINANCE_SERVER = LocalServer(
    "finance",
    "finance_db",
    "finance_db_user",
    "ACME_FINANCE_PASSWORD",
    "1234",
    "ACME_FINANCE_PORT",
    55432,
)
ANALYTICS_SERVER = LocalServer(
    "analytics",
    "analytics_db",
    "analytics_user",
    "ACME_ANALYTICS_PASSWORD",
    "analytics123",
    "ACME_ANALYTICS_PORT",
    55433,
)
SERVERS = (FINANCE_SERVER, ANALYTICS_SERVER)


@dataclass(frozen=True)
class ServerStatus:
    key: str
    database: str
    running: bool
    port: int | None
    pid: int | None
    data_dir: Path

    def describe(self) -> str:
        if self.running:
            return (
                f"{self.database}: running on 127.0.0.1:{self.port} (pid {self.pid}), "
                f"data in {self.data_dir}"
            )
        if (self.data_dir / "PG_VERSION").exists():
            return f"{self.database}: stopped, data in {self.data_dir}"
        return f"{self.database}: not created (run `acme local up`)"


def up(ports: dict[str, int | None] | None = None, progress=print) -> dict[str, str]:
    """Initialises (once), starts (when stopped) and records both servers; idempotent."""
    ports = ports or {}
    user = os_user.server_user()
    uris = {}
    for server in SERVERS:
        port = ensure_running(server, server.port(ports.get(server.key)), user, progress)
        ensure_database(server, port)
        uris[server.key] = server.uri(port)
    record_uris(uris)
    return uris


def down(progress=print) -> None:
    for server in SERVERS:
        if status_of(server).running:
            stop(server)
            progress(f"{server.database}: stopped")
        else:
            progress(f"{server.database}: not running")


def stop(server: LocalServer, mode: str = "fast") -> None:
    """Stops one server. `fast` ends its sessions cleanly; `immediate` is a crash to its
    clients, and the next start recovers from the WAL."""
    result = os_user.run_as(
        os_user.server_user(),
        [binary("pg_ctl"), "-D", str(server.data_dir), "-m", mode, "-w", "stop"],
    )
    if result.returncode != 0:
        raise LocalServerError(f"could not stop {server.database}: {last_line(result.stderr)}")


def start(server: LocalServer, port: int) -> int:
    """Starts one stopped server on its port (a no-op when it runs); returns the port."""
    return ensure_running(server, port, os_user.server_user(), progress=lambda _message: None)


def status() -> list[ServerStatus]:
    return [status_of(server) for server in SERVERS]


def status_of(server: LocalServer) -> ServerStatus:
    pid_file = server.data_dir / "postmaster.pid"
    running, pid, port = False, None, None
    if pid_file.exists():
        lines = pid_file.read_text().splitlines()
        if len(lines) >= 4:
            pid, port = int(lines[0]), int(lines[3])
            running = process_alive(pid)
    return ServerStatus(server.key, server.database, running, port, pid, server.data_dir)


def ensure_running(server: LocalServer, port: int, user, progress) -> int:
    current = status_of(server)
    if current.running and current.port is not None:
        progress(f"{server.database}: already running on 127.0.0.1:{current.port}")
        return current.port
    if not (server.data_dir / "PG_VERSION").exists():
        initialise(server, user, progress)
    if not port_is_free(port):
        raise LocalServerError(
            f"port {port} for {server.database} is in use by another program: choose another "
            f"with --{server.key}-port or {server.port_env}"
        )
    progress(f"{server.database}: starting on 127.0.0.1:{port}")
    result = os_user.run_as(
        user,
        [
            binary("pg_ctl"),
            "-D",
            str(server.data_dir),
            "-l",
            str(server.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-o",
            # Commit timestamps: the history models date each version by its commit.
            f"-p {port} -c track_commit_timestamp=on",
            "start",
        ],
    )
    if result.returncode != 0:
        raise LocalServerError(
            f"{server.database} did not start: {server_log_reason(server)}; "
            f"the full log is {server.log_file}"
        )
    return port


def initialise(server: LocalServer, user, progress) -> None:
    progress(f"{server.database}: creating a new server in {server.data_dir}")
    if server.folder.exists():
        shutil.rmtree(server.folder)
    server.folder.mkdir(parents=True)
    password_file = server.folder / "initial-password"
    password_file.write_text(server.password() + "\n")
    password_file.chmod(0o600)
    os_user.hand_over(server.folder, user)
    if user is not None:
        os_user.allow_traversal_to(Path(binary("postgres")).parent)
    try:
        result = os_user.run_as(
            user,
            [
                binary("initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                server.user,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise LocalServerError(f"initdb failed for {server.database}: {last_line(result.stderr)}")
    with open(server.data_dir / "postgresql.conf", "a") as conf:
        conf.write(SERVER_SETTINGS)


def ensure_database(server: LocalServer, port: int) -> None:
    try:
        conn = psycopg2.connect(server.uri(port, "postgres"), connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise LocalServerError(
            f"{server.database} is running on port {port} but refuses "
            f"{server.user}: {last_line(str(exc))}. If you changed {server.password_env}, "
            f"run `acme local down`, remove {server.folder} and run `acme local up` again"
        ) from exc
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (server.database,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{server.database}"')
    finally:
        conn.close()


def record_uris(uris: dict[str, str]) -> None:
    path = recorded_uris_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(uris, indent=2) + "\n")
    temporary.chmod(0o600)
    temporary.replace(path)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def server_log_reason(server: LocalServer) -> str:
    if not server.log_file.exists():
        return "no server log was written"
    lines = [line for line in server.log_file.read_text().splitlines() if "FATAL" in line]
    return lines[-1] if lines else last_line(server.log_file.read_text())


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
