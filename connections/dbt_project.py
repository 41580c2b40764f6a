"""Where the dbt project is, and the project settings the Python reads. The contracts stated
once in the project (report exports, marts, modelled column types, order statuses, the model
lock class) are read through here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from connections.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
MODELS_DIR = DBT_PROJECT_DIR / "models"


@cache
def read_yml(path: Path) -> dict:
    """A yml file of the project, parsed once per process (by libyaml: every command reads
    several at import, and the pure-Python parser made that a visible part of an export).
    Shared between callers: read it, never change it."""
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def acme_vars() -> dict:
    """The project's `acme` vars (dbt_project.yml)."""
    return read_yml(DBT_PROJECT_DIR / "dbt_project.yml")["vars"]["acme"]
