"""Applies the project's plain-SQL files (sql/...) on a connection."""

from __future__ import annotations

from connections.settings import PROJECT_ROOT

SQL_ROOT = PROJECT_ROOT / "sql"


def apply_sql_file(cursor, relative_path: str) -> None:
    """Runs every statement of one file on the cursor's connection, in its transaction."""
    cursor.execute((SQL_ROOT / relative_path).read_text())
