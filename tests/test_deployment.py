"""The Docker deployment (docker-compose.yml, Dockerfile, .env.example, .dockerignore), checked
without a Docker engine: `docker-compose config` resolves the compose file exactly as
`docker-compose up` would, and the Dockerfile and .dockerignore are read as text.

What only an engine can show (the image builds, the servers start, the pipeline connects)
is tests/compose/test_compose.py's, under podman (`make compose-test`)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from tests.compose.stack import compose_variables, environment_without

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"

# The seed's services, and what its commands (`docker exec -it transactions-db pg_isready -U
# finance_db_user -d finance_db`, pg_dump, pg_restore) expect of them.
DATABASES = {
    "transactions-db": {"db": "finance_db", "user": "finance_db_user", "port": 5432},
    "analytical-db": {"db": "analytics_db", "user": "analytics_user", "port": 5433},
}
PIPELINE = "data-pipeline"
DSN_VARIABLES = {"transactions-db": "ACME_FINANCE_DSN", "analytical-db": "ACME_ANALYTICS_DSN"}
# postgres:18 keeps PGDATA in a versioned folder below this one; a volume mounted at the old
# .../data would hold nothing and the data would vanish with the container.
POSTGRES_DATA_ROOT = "/var/lib/postgresql"
METRICS_PORT = 9108
# What must never reach the build context: secrets, local state, and bulky leftovers.
NEVER_IN_CONTEXT = [
    ".env",
    ".git",
    ".venv",
    ".acme",
    "data-exports",
    "bench/results",
    "cli/__pycache__",
]
URI_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


# --- running docker-compose ------------------------------------------------------------------


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "docker-compose is not installed, and the deployment cannot be checked without it: "
            "run `make system-packages` (no Docker engine is needed)"
        )
    return path


def compose_config(env_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        env=environment_without(compose_variables()),
        timeout=30,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f"{path.name}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


# --- reading resolved services ---------------------------------------------------------------


def volume_mounts(service: dict) -> dict[str, str]:
    """target -> source, from the short ("src:dst:mode") or the long (mapping) syntax."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume["source"]
        else:
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


def port_mappings(service: dict) -> set[tuple[int, int]]:
    """(published, target) pairs, from either syntax."""
    pairs = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.add((int(port["published"]), int(port["target"])))
        else:
            published, target = str(port).split(":")[-2:]
            pairs.add((int(published), int(target)))
    return pairs


def option_value(words: list[str], option: str) -> str | None:
    return words[words.index(option) + 1] if option in words else None


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


# --- the compose file ------------------------------------------------------------------------


def test_the_seed_services_exist_under_their_own_container_names(config):
    services = config["services"]
    assert set(services) == {*DATABASES, PIPELINE}
    for name, service in services.items():
        assert service.get("container_name") == name, (
            f"{name}: container_name must be {name!r}, the seed's `docker exec {name} ...` "
            "commands name containers"
        )


@pytest.mark.parametrize("name", DATABASES)
def test_a_database_has_its_seed_name_user_and_port(config, name):
    service, expected = config["services"][name], DATABASES[name]
    # the official image unless POSTGRES_IMAGE names a stand-in (deploy/offline/)
    assert service["image"] == "postgres:18"
    environment = service["environment"]
    assert environment["POSTGRES_DB"] == expected["db"]
    assert environment["POSTGRES_USER"] == expected["user"]
    assert environment["POSTGRES_PASSWORD"], f"{name}: no password"
    port = expected["port"]
    assert (port, port) in port_mappings(service), f"{name}: port {port} is not published"
    if port != 5432:
        words = shlex.split(command_text(service))
        assert option_value(words, "-p") == str(port), f"{name}: the server must listen on {port}"
        # The tools run by `docker exec` (pg_isready, pg_dump) default to 5432 otherwise.
        assert str(environment.get("PGPORT")) == str(port), f"{name}: PGPORT must be {port}"


@pytest.mark.parametrize("name", DATABASES)
def test_a_database_health_check_asks_pg_isready_for_its_own_database(config, name):
    check, expected = config["services"][name]["healthcheck"], DATABASES[name]
    words = check["test"] if isinstance(check["test"], list) else shlex.split(check["test"])
    assert words[0] in ("CMD", "CMD-SHELL") and "pg_isready" in words[1:2], words
    assert option_value(words, "-U") == expected["user"]
    assert option_value(words, "-d") == expected["db"]
    assert option_value(words, "-p") == str(expected["port"])


@pytest.mark.parametrize("name", DATABASES)
def test_a_database_keeps_its_data_in_a_named_volume(config, name):
    mounts = volume_mounts(config["services"][name])
    assert POSTGRES_DATA_ROOT in mounts, (
        f"{name}: nothing mounted at {POSTGRES_DATA_ROOT}, where postgres:18 keeps its data"
    )
    volume = mounts[POSTGRES_DATA_ROOT]
    assert volume in (config.get("volumes") or {}), f"{name}: {volume!r} is not a named volume"


def test_the_pipeline_starts_after_both_databases_are_healthy(config):
    depends_on = config["services"][PIPELINE]["depends_on"]
    assert isinstance(depends_on, dict), "depends_on needs conditions, not a list"
    for name in DATABASES:
        assert depends_on.get(name, {}).get("condition") == "service_healthy", name


def test_the_pipeline_installs_capture_then_follows(config):
    command = command_text(config["services"][PIPELINE])
    assert "acme capture install" in command
    assert "acme pipeline run --follow" in command
    assert command.index("acme capture install") < command.index("acme pipeline run --follow")
    # With `sh -c`, docker stop's SIGTERM would reach the shell, not the pipeline.
    if command.startswith("sh -c"):
        assert "exec acme pipeline run" in command


def test_the_pipeline_publishes_its_metrics_port(config):
    service = config["services"][PIPELINE]
    words = shlex.split(command_text(service).replace("&&", " && "))
    assert option_value(words, "--metrics-port") == str(METRICS_PORT)
    assert (METRICS_PORT, METRICS_PORT) in port_mappings(service)


@pytest.mark.parametrize("name", DATABASES)
def test_the_pipeline_reaches_a_database_with_its_credentials(config, name):
    environment = config["services"][PIPELINE]["environment"]
    database = config["services"][name]["environment"]
    uri = urlsplit(environment[DSN_VARIABLES[name]])
    assert uri.scheme in ("postgresql", "postgres")
    assert uri.hostname == name
    assert uri.port == DATABASES[name]["port"]
    assert uri.username == database["POSTGRES_USER"]
    assert uri.password == database["POSTGRES_PASSWORD"]
    assert uri.path == f"/{database['POSTGRES_DB']}"


def test_the_seed_export_command_writes_into_the_mounted_folder(config):
    # `acme top_customers --output top_customers.csv`: a bare name goes to ACME_EXPORT_DIR
    # (exporter/csv_export.py), which must be where the host's data-exports/ is mounted.
    service = config["services"][PIPELINE]
    export_dir = service["environment"]["ACME_EXPORT_DIR"]
    mounts = volume_mounts(service)
    assert export_dir in mounts, f"ACME_EXPORT_DIR {export_dir} is not a mounted folder"
    assert Path(mounts[export_dir]) == REPO / "data-exports"
    # `--output data-exports/x.csv` is resolved from the working directory: the same folder.
    assert PurePosixPath(export_dir) == PurePosixPath(dockerfile_workdir()) / "data-exports"


def test_files_mounted_from_the_repository_exist(config):
    for name, service in config["services"].items():
        for target, source in volume_mounts(service).items():
            is_bind = source.startswith("/")
            if is_bind and Path(source) != REPO / "data-exports":
                assert Path(source).exists(), f"{name}: {source} (mounted at {target}) is missing"


def test_the_pipeline_is_built_from_this_repository(config):
    build = config["services"][PIPELINE]["build"]
    assert Path(build["context"]) == REPO
    assert build.get("dockerfile", "Dockerfile") == DOCKERFILE.name
    # compose's build argument wins over the Dockerfile's default: both name the same image
    assert build["args"]["PYTHON_IMAGE"] == "python:3.11-slim"


# --- .env.example ----------------------------------------------------------------------------


def test_env_example_defines_every_variable_the_compose_file_uses():
    # A variable with a default (${NAME:-value}) may stay commented out (# NAME=value);
    # one without must be set.
    defined = set(read_env_file(ENV_EXAMPLE))
    commented = set(re.findall(r"^# ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    optional = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-", COMPOSE_FILE.read_text()))
    missing = sorted(compose_variables() - defined - (commented & optional))
    assert not missing, f".env.example does not define {', '.join(missing)}"


def test_env_example_passwords_fit_into_a_uri_unescaped():
    # The compose file writes them into postgresql:// URIs as they are.
    for name, value in read_env_file(ENV_EXAMPLE).items():
        if "PASSWORD" in name:
            assert URI_SAFE.fullmatch(value), f"{name}={value!r} needs escaping in a URI"


def required_variables() -> list[str]:
    text = COMPOSE_FILE.read_text()
    return sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", text)))


def test_every_password_is_required_rather_than_defaulted():
    text = COMPOSE_FILE.read_text()
    passwords = {name for name in compose_variables() if "PASSWORD" in name}
    assert passwords, "the compose file takes no passwords from the environment"
    assert passwords <= set(required_variables()), "a password is not required in compose"
    defaulted = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?-", text))
    assert not passwords & defaulted, f"defaults in compose for {sorted(passwords & defaulted)}"


@pytest.mark.parametrize("name", required_variables())
def test_a_missing_variable_stops_compose_with_a_clear_message(tmp_path, name):
    env_file = tmp_path / "env"
    kept = [
        line
        for line in ENV_EXAMPLE.read_text().splitlines()
        if not line.strip().startswith(f"{name}=")
    ]
    env_file.write_text("\n".join(kept) + "\n")
    result = compose_config(env_file)
    assert result.returncode != 0, f"compose started without {name}"
    assert name in result.stderr and ".env.example" in result.stderr, result.stderr


# --- the Dockerfile and .dockerignore --------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def copy_sources_and_targets(arguments: str, workdir: str) -> list[tuple[str, str]]:
    """(source, absolute destination of that source) for one COPY."""
    if arguments.startswith("["):
        words = yaml.safe_load(arguments)
    else:
        words = [word for word in shlex.split(arguments) if not word.startswith("--")]
    *sources, destination = words
    into_folder = destination.endswith("/") or len(sources) > 1
    base = PurePosixPath(workdir) / destination
    return [
        (source, str(base / PurePosixPath(source).name if into_folder else base))
        for source in sources
    ]


def dockerfile_copies(text: str) -> list[tuple[str, str]]:
    copies, workdir = [], "/"
    for keyword, arguments in dockerfile_instructions(text):
        if keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / arguments)
        elif keyword in ("COPY", "ADD"):
            assert "--from" not in arguments, "a multi-stage COPY: teach this test about it"
            copies.extend(copy_sources_and_targets(arguments, workdir))
    return copies


def dockerfile_workdir() -> str:
    workdir = "/"
    for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / arguments)
    return workdir


def ignore_patterns(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go's filepath.Match plus **), anchored at the context root."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    translated = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(translated.get(part, re.escape(part)) for part in parts))


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, and an excluded folder excludes all of
    it, so every leading part of the path is tried too."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: length + 1]) for length in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = pattern_regex(pattern.lstrip("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def copy_problems(dockerfile: str, repo: Path, patterns: list[str]) -> list[str]:
    problems = []
    for source, _target in dockerfile_copies(dockerfile):
        if not (repo / source).exists():
            problems.append(f"COPY {source}: not in the repository")
        elif is_ignored(source, patterns):
            problems.append(f"COPY {source}: excluded from the build context by .dockerignore")
    return problems


def package_problems(dockerfile: str, packages: list[str], workdir: str) -> list[str]:
    """Every package, and what the code reads beside them, must land in the install folder:
    connections.settings.PROJECT_ROOT is the folder above the packages."""
    copied = {target for _source, target in dockerfile_copies(dockerfile)}
    needed = [*packages, "sql", "dbt_project", "profiles.yml", "pyproject.toml", "README.md"]
    return [
        f"{name} is not copied to {PurePosixPath(workdir) / name}"
        for name in needed
        if str(PurePosixPath(workdir) / name) not in copied
    ]


def setuptools_packages() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return pyproject["tool"]["setuptools"]["packages"]


def test_every_copy_source_is_in_the_build_context():
    problems = copy_problems(
        DOCKERFILE.read_text(), REPO, ignore_patterns(DOCKERIGNORE.read_text())
    )
    assert not problems, "\n".join(problems)


def test_every_package_and_its_data_is_copied_into_the_install_folder():
    problems = package_problems(DOCKERFILE.read_text(), setuptools_packages(), dockerfile_workdir())
    assert not problems, "\n".join(problems)


def test_the_image_installs_the_project_editable_from_its_folder():
    # From site-packages, PROJECT_ROOT would point there and sql/ and dbt_project/ would be
    # missing; an editable install keeps the code where it was copied.
    runs = [
        args
        for keyword, args in dockerfile_instructions(DOCKERFILE.read_text())
        if keyword == "RUN"
    ]
    assert any(re.search(r"pip install\b.*\s-e \.(\s|$)", run) for run in runs), runs


def test_the_image_is_python_311_slim_and_runs_as_a_user():
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    # python:3.11-slim unless PYTHON_IMAGE names a stand-in (deploy/offline/)
    assert instructions[:2] == [
        ("ARG", "PYTHON_IMAGE=python:3.11-slim"),
        ("FROM", "${PYTHON_IMAGE}"),
    ]
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image runs as root: add a USER"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]


def test_the_build_context_leaves_out_secrets_and_local_state():
    patterns = ignore_patterns(DOCKERIGNORE.read_text())
    leaked = [path for path in NEVER_IN_CONTEXT if not is_ignored(path, patterns)]
    assert not leaked, f".dockerignore lets in {', '.join(leaked)}"


# --- the checks themselves catch what they are for --------------------------------------------


def test_the_copy_check_reports_a_missing_file_and_an_ignored_one(tmp_path):
    (tmp_path / "kept").mkdir()
    (tmp_path / "data-exports").mkdir()
    dockerfile = (
        "FROM x\nWORKDIR /app\nCOPY kept ./kept\nCOPY gone ./gone\n"
        "COPY data-exports ./data-exports\n"
    )
    problems = copy_problems(dockerfile, tmp_path, ["data-exports"])
    assert problems == [
        "COPY gone: not in the repository",
        "COPY data-exports: excluded from the build context by .dockerignore",
    ]


def test_the_package_check_reports_a_package_left_behind_or_put_elsewhere():
    dockerfile = (
        "FROM x\nWORKDIR /app\nCOPY pyproject.toml README.md profiles.yml ./\n"
        "COPY sql ./sql\nCOPY dbt_project ./dbt_project\nCOPY cli ./cli\nCOPY loader /opt/loader\n"
    )
    assert package_problems(dockerfile, ["cli", "loader", "monitoring"], "/app") == [
        "loader is not copied to /app/loader",
        "monitoring is not copied to /app/monitoring",
    ]


def test_dockerignore_patterns_follow_dockers_rules():
    assert is_ignored("cli/__pycache__/main.pyc", ["**/__pycache__"])
    assert is_ignored("__pycache__", ["**/__pycache__"])
    assert is_ignored("bench/results/x.json", ["bench/results"])
    assert not is_ignored("bench/run.py", ["bench/results"])
    assert not is_ignored("acme.egg-info.txt", ["*.egg-info"])
    assert not is_ignored("sql", ["*", "!sql"])
