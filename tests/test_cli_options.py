"""The CLI's options, messages and exit codes, through click's CliRunner in this process: no
server is needed to refuse a bad option or an unusable setting, so these run in seconds."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cli.main import acme


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the CLI, so a new one cannot miss its help test."""
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


COMMANDS = command_paths(acme)

# A URI of another database kind: refused before any connection is tried.
NOT_A_URI = "mysql://someone@somewhere/finance_db"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Runs `acme ...` in-process with an empty ACME_HOME and no database configured."""
    monkeypatch.setenv("ACME_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ACME_EXPORT_DIR", str(tmp_path / "exports"))
    for name in ("ACME_FINANCE_DSN", "ACME_ANALYTICS_DSN"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(acme, list(args), env=env, catch_exceptions=False)

    return run


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "acme")
def test_every_command_teaches_with_help(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: acme")
    # a summary line beyond the usage line, and at least the --help option
    assert len(result.stdout.splitlines()) > 4 and "--help" in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["frobnicate"], "No such command"),
        (["open_orders", "--colour", "red"], "No such option"),
        (["top_customers", "--limit", "0"], "0 is not in the range"),
        (["top_delivery_dates", "--limit", "many"], "'many' is not a valid integer"),
        (["simulate", "--concurrency", "65"], "65 is not in the range"),
        (["capture", "prune", "--older-than", "7 weeks"], "not a period like 30s"),
        (["capture", "prune", "--older-than", "36700d"], "longer than 100 years"),
        (["pipeline", "run", "--interval", "0"], "0.0 is not in the range"),
        (["pipeline", "run", "--metrics-port", "9100"], "--metrics-port needs --follow"),
        (["pipeline", "run", "--follow", "--full-refresh"], "cannot be combined with --follow"),
        (["local", "up", "--finance-port", "70000"], "70000 is not in the range"),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_it(cli, args, fragment):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["pipeline", "run"],
        ["pipeline", "status"],
        ["verify"],
        ["top_customers"],
        ["capture", "status"],
    ],
)
def test_no_database_configured_is_one_line_naming_the_fix(cli, args):
    result = cli(*args)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "configured" in line and "acme local up" in line, line


@pytest.mark.parametrize("variable", ["ACME_FINANCE_DSN", "ACME_ANALYTICS_DSN"])
def test_a_malformed_uri_is_one_line_naming_the_variable(cli, variable):
    result = cli("db", "check", env={variable: NOT_A_URI})
    assert result.exit_code == 1
    assert f"{variable} must be a postgresql:// URI" in result.output


def test_an_unreadable_recorded_connection_file_names_itself(cli, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "connections.json").write_text("{not json")
    result = cli("pipeline", "status")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "connections.json" in line and "acme local up" in line, line


def test_local_env_prints_what_profiles_yml_reads(cli):
    uris = {
        "ACME_FINANCE_DSN": "postgresql://finance_db_user:pw@127.0.0.1:6001/finance_db",
        "ACME_ANALYTICS_DSN": "postgresql://analytics_user:s3cret@127.0.0.1:6002/analytics_db",
    }
    result = cli("local", "env", env=uris)
    assert result.exit_code == 0, result.output
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()
    )
    assert exported["DBT_ACME_PORT"] == "6002"
    assert exported["DBT_ACME_DBNAME"] == "analytics_db"
    assert exported["DBT_ENV_SECRET_ACME_PASSWORD"] == "s3cret"


def test_report_help_quotes_the_dbt_definitions(cli):
    """The statuses and columns in --help come from the dbt project, not a second copy."""
    assert "status not COMPLETED or CANCELLED" in cli("open_orders", "--help").stdout
    assert "customer_id,customer_name,total_orders" in cli("top_customers", "--help").stdout
