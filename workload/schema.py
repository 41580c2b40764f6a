"""`acme db init`: the operations schema the demo application writes (sql/schema/)."""

from __future__ import annotations

from connections.connect import connected
from connections.settings import FINANCE
from loader.sql_files import apply_sql_file


def create_source_schema() -> None:
    with connected(FINANCE, application_name="acme db init") as conn, conn, conn.cursor() as cur:
        apply_sql_file(cur, "schema/operations.sql")
