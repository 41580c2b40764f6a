"""The platform's own steps, in-process, for one pair: load, and the incremental dbt run that
`acme pipeline run --follow` does each cycle (models only; the data tests run on their own
interval), with the manifest parsed once per pair as --follow does (a manifest names its
database, so each pair has its own)."""

from __future__ import annotations

from bench.cluster import Pair
from loader.copy_changes import load_changes
from pipeline.dbt_build import INCREMENTAL_MODELS, parse_manifest, run_dbt


class Warehouse:
    def __init__(self, pair: Pair):
        self.pair = pair
        self.manifest = None

    def load(self) -> int:
        with self.pair.active():
            return load_changes().changes

    def build_all(self) -> None:
        """Every model, no tests: the first build of a pair."""
        with self.pair.active():
            run_dbt("run", "--quiet")
            self.manifest = parse_manifest()

    def incremental(self) -> None:
        with self.pair.active():
            run_dbt("run", "--quiet", "--select", INCREMENTAL_MODELS, manifest=self.manifest)

    def full_refresh(self) -> None:
        """Every model: replacing a mart drops the report views on it (dbt drops the old
        table with cascade), so they are rebuilt too."""
        with self.pair.active():
            run_dbt("run", "--quiet", "--full-refresh", manifest=self.manifest)
