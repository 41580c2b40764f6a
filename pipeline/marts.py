"""The current-state marts and the captured table each one holds, read from the dbt project:
in marts.yml, each mart's is_current_state_of test names the staging model it is built from,
stg_<schema>__<table>, so the pairing is stated there and only there. The other models in
marts.yml are derived from the marts (fact_pending_order_items, agg_pending_items_by_product):
incremental too, but the current state of no captured table, so verify does not compare
them with the source (their data tests compare them with the marts). In history.yml, each
history model's is_history_of test names its mart, and so its captured table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from connections.dbt_project import MODELS_DIR, read_yml

MARTS_YML = MODELS_DIR / "marts" / "marts.yml"
HISTORY_YML = MODELS_DIR / "history" / "history.yml"
MART_SCHEMA = "analytics"
STAGED_MODEL = re.compile(r"ref\('stg_(?P<schema>\w+?)__(?P<table>\w+)'\)")
MART_MODEL = re.compile(r"ref\('(?P<name>\w+)'\)")


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
    for model in read_yml(path)["models"]:
        for test in model.get("data_tests", []):
            if isinstance(test, dict) and "is_current_state_of" in test:
                staged = test["is_current_state_of"]["arguments"]["staged_model"]
                match = STAGED_MODEL.fullmatch(staged)
                if match is None:
                    raise ValueError(f"{path}: {model['name']} names no stg_ model: {staged}")
                marts.append(Mart(model["name"], (match["schema"], match["table"])))
    return tuple(marts)


def read_histories(marts: tuple[Mart, ...], path: Path = HISTORY_YML) -> tuple[Mart, ...]:
    """The history models, each with the captured table of the mart its test names."""
    source_of = {mart.name: mart.source for mart in marts}
    histories = []
    for model in read_yml(path)["models"]:
        for test in model.get("data_tests", []):
            if isinstance(test, dict) and "is_history_of" in test:
                named = test["is_history_of"]["arguments"]["mart"]
                match = MART_MODEL.fullmatch(named)
                if match is None or match["name"] not in source_of:
                    raise ValueError(f"{path}: {model['name']} names no mart: {named}")
                histories.append(Mart(model["name"], source_of[match["name"]]))
    return tuple(histories)


def read_incremental_model_names(
    paths: tuple[Path, ...] = (MARTS_YML, HISTORY_YML),
) -> tuple[str, ...]:
    """Every model in marts.yml and history.yml: both folders are incremental as a whole
    (dbt_project.yml), and each such model records the range it applied in
    staging.applied_loads."""
    return tuple(model["name"] for path in paths for model in read_yml(path)["models"])


MARTS = read_marts()
HISTORIES = read_histories(MARTS)
INCREMENTAL_MODEL_NAMES = read_incremental_model_names()
