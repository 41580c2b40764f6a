"""The landing zone in analytics_db (sql/staging/change_log.sql)."""

from __future__ import annotations

from loader.sql_files import apply_sql_file


def ensure_staging(conn) -> None:
    """Creates the staging tables when missing; committed at once so readers see them."""
    with conn, conn.cursor() as cur:
        cur.execute("select to_regclass('staging.load_state') is not null")
        if not cur.fetchone()[0]:
            apply_sql_file(cur, "staging/change_log.sql")
