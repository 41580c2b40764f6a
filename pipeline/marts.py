"""The current-state marts and the captured table each one holds, read from the dbt project:
in marts.yml, each mart's is_current_state_of test names the staging model it is built from,
stg_<schema>__<table>, so the pairing is stated there and only there. The other models in
marts.yml are derived from the marts (fact_pending_order_items, agg_pending_items_by_product):
incremental too, but the current state of no captured table, so verify does not compare
them with the source (their data tests compare them with the marts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from connections.dbt_project import MODELS_DIR

MARTS_YML = MODELS_DIR / "marts" / "marts.yml"
MART_SCHEMA = "analytics"
STAGED_MODEL = re.compile(r"ref\('stg_(?P<schema>\w+?)__(?P<table>\w+)'\)")


@dataclass(frozen=True)
class Mart:
    name: str
    source: tuple[str, str]  # (schema, table) on finance_db

    @property
    def relation(self) -> tuple[str, str]:
        return (MART_SCHEMA, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{MART_SCHEMA}.{self.name}"


def read_marts(path: Path = MARTS_YML) -> tuple[Mart, ...]:
    marts = []
    for model in yaml.safe_load(path.read_text())["models"]:
        for test in model.get("data_tests", []):
            if isinstance(test, dict) and "is_current_state_of" in test:
                staged = test["is_current_state_of"]["arguments"]["staged_model"]
                match = STAGED_MODEL.fullmatch(staged)
                if match is None:
                    raise ValueError(f"{path}: {model['name']} names no stg_ model: {staged}")
                marts.append(Mart(model["name"], (match["schema"], match["table"])))
    return tuple(marts)


def read_incremental_model_names(path: Path = MARTS_YML) -> tuple[str, ...]:
    """Every model in marts.yml: the marts folder is incremental as a whole (dbt_project.yml),
    and each such model records the range it applied in staging.applied_loads."""
    return tuple(model["name"] for model in yaml.safe_load(path.read_text())["models"])


MARTS = read_marts()
INCREMENTAL_MODEL_NAMES = read_incremental_model_names()
