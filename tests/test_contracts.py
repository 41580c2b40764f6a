"""The marts' and history models' enforced contracts. dbt checks a model's SQL against its
contract before each build writes, but compares type families only: a contract declaring
numeric(12,2) where the staging model casts numeric(12,4), or varchar(20) for varchar(50),
passes its check, and the table built from the contract would round or refuse values. So each
declared type is held to the type of the same column in the staging model it decodes, and
to the table PostgreSQL holds, not-null constraints included."""

from __future__ import annotations

import json

from pipeline.dbt_build import dbt_artifacts_dir
from tests.test_restore import FIRST


def column_types(platform, relation: str) -> dict[str, tuple[str, bool]]:
    """column -> (its type, lengths and precisions included; whether it is NOT NULL)."""
    return {
        column: (data_type, not_null)
        for column, data_type, not_null in platform.analytics(
            "select attname, format_type(atttypid, atttypmod), attnotnull "
            "from pg_attribute where attrelid = %s::regclass and attnum > 0 "
            "and not attisdropped order by attnum",
            (relation,),
            fetch=True,
        )
    }


def test_contracts_match_what_the_models_read_and_the_tables_built(platform):
    platform.acme(*FIRST)
    platform.pipeline_run()
    manifest = json.loads((dbt_artifacts_dir() / "target" / "manifest.json").read_text())
    models = {
        node["unique_id"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    contracted = [node for node in models.values() if node["config"]["contract"]["enforced"]]
    incremental = [
        node for node in models.values() if node["config"]["materialized"] == "incremental"
    ]
    assert contracted == incremental and len(contracted) == 10
    compared = 0
    for node in contracted:
        name = node["name"]
        declared = {
            column: (
                spec["data_type"],
                any(c["type"] == "not_null" for c in spec.get("constraints", [])),
            )
            for column, spec in node["columns"].items()
        }
        built = column_types(platform, f"{node['schema']}.{node['alias']}")
        assert declared == built, name
        assert list(declared) == list(built), f"{name}: columns out of order"
        # the staging model a mart or history model decodes its columns from (the pending
        # items models add up or copy marts' columns, and are held to their tables only)
        upstreams = [models[u] for u in node["depends_on"]["nodes"] if u in models]
        for upstream in (u for u in upstreams if u["path"].startswith("staging/")):
            read = column_types(platform, f"{upstream['schema']}.{upstream['alias']}")
            for column in declared.keys() & read.keys():
                assert declared[column][0] == read[column][0], (
                    f"{name}.{column} is declared {declared[column][0]} but "
                    f"{upstream['name']} gives {read[column][0]}"
                )
                compared += 1
    assert compared > 40
