"""`acme db init`: the operations schema the demo application writes (sql/schema/)."""

from __future__ import annotations

from connections.connect import connect
from connections.settings import FINANCE
from loader.sql_files import apply_sql_file


def create_source_schema() -> None:
    conn = connect(FINANCE, application_name="acme db init")
    try:
        with conn, conn.cursor() as cur:
            apply_sql_file(cur, "schema/operations.sql")
    finally:
        conn.close()
