"""`acme db check`: can both databases be reached with the configured credentials?"""

from __future__ import annotations

from dataclasses import dataclass

from connections.connect import connected
from connections.errors import AcmeError
from connections.settings import ANALYTICS, FINANCE, Database, dsn_for, redact


@dataclass(frozen=True)
class CheckResult:
    database: Database
    ok: bool
    detail: str


def check_databases() -> list[CheckResult]:
    return [check(database) for database in (FINANCE, ANALYTICS)]


def check(database: Database) -> CheckResult:
    try:
        with (
            connected(database, application_name="acme db check") as conn,
            conn,
            conn.cursor() as cur,
        ):
            cur.execute("select current_user, current_setting('server_version')")
            user, version = cur.fetchone()
    except AcmeError as exc:
        return CheckResult(database, False, str(exc))
    return CheckResult(
        database, True, f"ok: {redact(dsn_for(database))} as {user}, PostgreSQL {version}"
    )
