"""Resolves the libpq URIs of finance_db and analytics_db.

ACME_FINANCE_DSN and ACME_ANALYTICS_DSN win; otherwise the URIs that `acme local up`
recorded in the project's state folder are used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from connections.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Database:
    """One of the platform's two databases."""

    key: str
    label: str
    env_var: str


FINANCE = Database("finance", "finance_db", "ACME_FINANCE_DSN")
ANALYTICS = Database("analytics", "analytics_db", "ACME_ANALYTICS_DSN")


def state_dir() -> Path:
    """The folder holding the local servers and their recorded URIs (ACME_HOME)."""
    return Path(os.environ.get("ACME_HOME", PROJECT_ROOT / ".acme")).resolve()


def recorded_uris_path() -> Path:
    return state_dir() / "connections.json"


def dsn_for(database: Database) -> str:
    """The URI to reach a database, or a ConfigurationError that says how to set one."""
    from_env = os.environ.get(database.env_var)
    if from_env:
        return from_env
    path = recorded_uris_path()
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot read {path} ({exc}): run `acme local up` again to rewrite it"
            ) from exc
        if recorded.get(database.key):
            return recorded[database.key]
    raise ConfigurationError(
        f"no {database.label} configured: run `acme local up` to start local servers, "
        f"or set {database.env_var} to a postgresql:// URI"
    )


@dataclass(frozen=True)
class ConnectionParts:
    """The pieces of a URI that dbt's profile and messages need."""

    host: str
    port: int
    user: str
    password: str
    dbname: str


def parse_uri(dsn: str, env_var: str) -> ConnectionParts:
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"{env_var} must be a postgresql:// URI like "
            "postgresql://user:password@host:5432/dbname"
        )
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigurationError(f"{env_var} has an invalid port: {exc}") from exc
    return ConnectionParts(
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        dbname=unquote(parts.path.lstrip("/")),
    )


def redact(dsn: str) -> str:
    """The URI with its password replaced, for messages and status output."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
