"""The platform's own steps, in-process, for one pair: load, and the incremental dbt runs that
`acme pipeline run --follow` does (the marts each cycle, the history models on their own
interval; models only, the data tests run on theirs), with the manifest parsed once per pair
as --follow does (a manifest names its database, so each pair has its own)."""

from __future__ import annotations

from bench.cluster import Pair
from loader.copy_changes import load_changes
from pipeline.dbt_build import HISTORY_MODELS, MART_MODELS, parse_manifest, run_dbt


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
        """The marts, as each --follow cycle builds them."""
        self.run("--select", MART_MODELS)

    def history(self) -> None:
        """The history models, as --follow builds them every --history-interval."""
        self.run("--select", HISTORY_MODELS)

    def full_refresh_of(self, selection: str) -> None:
        """A full refresh of the selected models and what reads them (replacing a table drops
        the views on it, cascade, so they are rebuilt too)."""
        self.run("--full-refresh", "--select", f"{selection}+")

    def run(self, *selection: str) -> None:
        with self.pair.active():
            run_dbt("run", "--quiet", *selection, manifest=self.manifest)
