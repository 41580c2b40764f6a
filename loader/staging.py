"""The landing zone in analytics_db (sql/staging/change_log.sql)."""

from __future__ import annotations

from loader.sql_files import apply_sql_file


def ensure_staging(conn) -> None:
    """Creates or upgrades the staging tables when needed; committed at once.

    Checked first rather than applied every time: ALTER TABLE would lock load_state on each
    cycle even when there is nothing to change."""
    with conn, conn.cursor() as cur:
        # The newest parts of the file: a column, the incremental models' lookup index and
        # the build range tables.
        cur.execute(
            "select exists (select from information_schema.columns where table_schema = "
            "'staging' and table_name = 'load_state' and column_name = 'load_fence') "
            "and to_regclass('staging.change_log_key_idx') is not null "
            "and to_regclass('staging.applied_loads') is not null "
            "and exists (select from information_schema.columns where table_schema = "
            "'staging' and table_name = 'load_batches' and column_name = 'ends_transaction')"
        )
        if not cur.fetchone()[0]:
            apply_sql_file(cur, "staging/change_log.sql")
