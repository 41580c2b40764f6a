"""The landing zone in analytics_db (sql/staging/change_log.sql)."""

from __future__ import annotations

import hashlib
from functools import cache

from loader.sql_files import SQL_ROOT, apply_sql_file

STAGING_SQL = "staging/change_log.sql"
VERSION_PREFIX = "acme staging schema "


@cache
def staging_version() -> str:
    """The version of the staging schema this code lands into: its SQL file's digest, so any
    change to the file is applied once, with no number to remember to raise. Read once per
    process: every --follow cycle checks it."""
    return hashlib.sha256((SQL_ROOT / STAGING_SQL).read_bytes()).hexdigest()[:16]


def ensure_staging(conn) -> None:
    """Creates or upgrades the staging tables when the recorded version is not this code's;
    committed at once.

    Checked first rather than applied every time: ALTER TABLE would lock load_state on each
    cycle even when there is nothing to change. The version is a comment on load_state, so a
    warehouse restored from an older dump brings back its own (older) version with the table,
    and the file is applied again over it."""
    marker = f"{VERSION_PREFIX}{staging_version()}"
    with conn, conn.cursor() as cur:
        cur.execute("select obj_description(to_regclass('staging.load_state'), 'pg_class')")
        if cur.fetchone() == (marker,):
            return
        apply_sql_file(cur, STAGING_SQL)
        cur.execute(f"comment on table staging.load_state is '{marker}'")
