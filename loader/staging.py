"""The landing zone in analytics_db (sql/staging/change_log.sql)."""

from __future__ import annotations

import hashlib

from loader.sql_files import SQL_ROOT, apply_sql_file

STAGING_SQL = "staging/change_log.sql"


def staging_version() -> str:
    """The version of the staging schema this code lands into: its SQL file's digest, so any
    change to the file is applied once, with no number to remember to raise."""
    return hashlib.sha256((SQL_ROOT / STAGING_SQL).read_bytes()).hexdigest()[:16]


def ensure_staging(conn) -> None:
    """Creates or upgrades the staging tables when the recorded version is not this code's;
    committed at once.

    Checked first rather than applied every time: ALTER TABLE would lock load_state on each
    cycle even when there is nothing to change."""
    version = staging_version()
    with conn, conn.cursor() as cur:
        cur.execute("select to_regclass('staging.schema_version') is not null")
        if cur.fetchone()[0]:
            cur.execute("select applied_version from staging.schema_version")
            if cur.fetchone() == (version,):
                return
        apply_sql_file(cur, STAGING_SQL)
        cur.execute(
            "insert into staging.schema_version (applied_version) values (%s) "
            "on conflict (singleton) do update set applied_version = excluded.applied_version",
            (version,),
        )
