"""Opens connections and turns libpq's failures into one actionable line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from connections.errors import CredentialsRefused, DatabaseUnavailable, first_line
from connections.settings import Database, dsn_for, parse_uri, redact

CONNECT_TIMEOUT_SECONDS = 5


def connect(
    database: Database, *, application_name: str = "acme"
) -> psycopg2.extensions.connection:
    """A connection to finance_db or analytics_db, in UTC, or DatabaseUnavailable."""
    dsn = dsn_for(database)
    parse_uri(dsn, database.env_var)
    try:
        conn = psycopg2.connect(
            dsn,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=application_name,
            options="-c timezone=UTC",
        )
    except psycopg2.OperationalError as exc:
        message = explain_connect_failure(database, dsn, exc)
        if refuses_for_good(exc):
            raise CredentialsRefused(message) from exc
        raise DatabaseUnavailable(message) from exc
    return conn


@contextmanager
def connected(
    database: Database, *, application_name: str = "acme"
) -> Iterator[psycopg2.extensions.connection]:
    """connect()'s connection, closed when the block ends however it ends.

    psycopg2's own `with conn:` only ends a transaction and leaves the connection open."""
    conn = connect(database, application_name=application_name)
    try:
        yield conn
    finally:
        conn.close()


def refuses_for_good(exc: Exception) -> bool:
    """A wrong password or user, a missing database: the same answer on every retry."""
    lowered = str(exc).lower()
    return (
        "password authentication failed" in lowered
        or "no password supplied" in lowered
        or ("does not exist" in lowered and ("database" in lowered or "role" in lowered))
        or "no pg_hba.conf entry" in lowered
        or "permission denied for database" in lowered
    )


def explain_connect_failure(database: Database, dsn: str, exc: Exception) -> str:
    detail = first_line(exc)
    where = redact(dsn)
    lowered = detail.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (
            f"{database.label} refused the credentials in {where}: fix the user or password "
            f"in {database.env_var} (or rerun `acme local up` for the local servers)"
        )
    if "does not exist" in lowered and "database" in lowered:
        return f"{detail}; check the database name in {database.env_var}"
    if "connection refused" in lowered or "could not connect" in lowered or "timeout" in lowered:
        return (
            f"{database.label} is not reachable at {where} ({detail}): start it with "
            f"`acme local up`, or point {database.env_var} at a running server"
        )
    return f"cannot connect to {database.label} at {where}: {detail}"
