"""The marts' and history models' enforced contracts. dbt checks a model's SQL against its
contract before each build writes, but compares type families only: a contract declaring
numeric(10,1) where the model's SQL gives numeric(12,2), or varchar(20) for varchar(50),
passes its check, and the table built from the contract would round or refuse values. So each
declared type, lengths and precisions included, is held to the type the model's compiled SQL
gives (PostgreSQL's own reading of it, as a view), and to the table built, not-null
constraints included."""

from __future__ import annotations

import json

import psycopg2

from pipeline.dbt_build import dbt_artifacts_dir
from tests.test_restore import FIRST

COLUMNS = """
    select attname, format_type(atttypid, atttypmod), attnotnull
    from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped
    order by attnum
"""


def test_contracts_match_what_the_models_sql_gives_and_the_tables_built(platform):
    platform.acme(*FIRST)
    platform.pipeline_run()
    manifest = json.loads((dbt_artifacts_dir() / "target" / "manifest.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    contracted = [node for node in models if node["config"]["contract"]["enforced"]]
    incremental = [node for node in models if node["config"]["materialized"] == "incremental"]
    assert contracted == incremental and len(contracted) == 12
    with psycopg2.connect(platform.analytics_uri) as conn, conn.cursor() as cur:
        for node in contracted:
            name = node["name"]
            declared = [
                (
                    column,
                    spec["data_type"],
                    any(c["type"] == "not_null" for c in spec["constraints"]),
                )
                for column, spec in node["columns"].items()
            ]
            cur.execute(COLUMNS, (f"{node['schema']}.{node['alias']}",))
            assert cur.fetchall() == declared, f"{name}: the table is not its contract"
            # The SQL of the build that just ran, as PostgreSQL types it.
            cur.execute(f"create temporary view contract_probe as {node['compiled_code']}")
            cur.execute(COLUMNS, ("contract_probe",))
            given = [(column, data_type) for column, data_type, _ in cur.fetchall()]
            cur.execute("drop view contract_probe")
            assert given == [(column, data_type) for column, data_type, _ in declared], name
        conn.rollback()
