"""Where the dbt project is, and the project settings the Python reads. The contracts stated
once in the project (report exports, marts, modelled column types, order statuses, the model
lock class) are read through here."""

from __future__ import annotations

from functools import cache

import yaml

from connections.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
MODELS_DIR = DBT_PROJECT_DIR / "models"


@cache
def acme_vars() -> dict:
    """The project's `acme` vars (dbt_project.yml), read once per process."""
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["acme"]
