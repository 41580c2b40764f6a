"""Load throughput, measured on each catch-up burst (bench/figures/catch_up.py): the loader
lands the burst's backlog (watermark and batches included) in its own process, against a
raw COPY of the same rows between the two servers (psql to psql through a pipe) into a table
of the same shape, indexes and size. The raw COPY stages no commit time (null): reading it is
part of the loader's cost, which the baseline must not pay."""

from __future__ import annotations

import json
import subprocess

from bench.cluster import Pair
from bench.measure import median, psql, python_module, run_child, timed
from bench.results import Row
from loader.copy_changes import STAGED_COLUMNS

RAW_QUERY = (
    "copy (select change_id, txid::text::bigint, changed_at, null::timestamptz, table_schema, "
    "table_name, operation, primary_key, old_row, new_row, 1::bigint from cdc.change_log "
    "where change_id > {after}) to stdout"
)


def load_in_child(pair: Pair) -> tuple[int, float, float]:
    """One loader run in a process of its own: (changes, the loader's seconds, peak RSS MB)."""
    child = run_child(python_module("bench.load_once"), pair.environment(), memory=True)
    outcome = json.loads(child.stdout)
    return outcome["changes"], outcome["seconds"], child.max_rss_mb


def prepare_raw_table(pair: Pair) -> None:
    """raw_copy.change_log: staging.change_log's shape and indexes, holding the same rows, so
    each raw COPY appends to a table as large as the one the loader appends to."""
    pair.analytics(
        "drop schema if exists raw_copy cascade; create schema raw_copy; "
        "create table raw_copy.change_log (like staging.change_log including all); "
        "insert into raw_copy.change_log select * from staging.change_log"
    )


def raw_copy(pair: Pair, after_change_id: int) -> float:
    """Seconds to COPY the change-log rows after after_change_id into raw_copy.change_log."""
    query = RAW_QUERY.format(after=int(after_change_id))
    source = subprocess.Popen(psql(pair.finance_uri, "-c", query), stdout=subprocess.PIPE)
    seconds = timed(
        lambda: subprocess.run(
            psql(
                pair.analytics_uri, "-c", f"copy raw_copy.change_log ({STAGED_COLUMNS}) from stdin"
            ),
            stdin=source.stdout,
            check=True,
        )
    )
    source.stdout.close()
    if source.wait() != 0:
        raise RuntimeError("raw COPY out of finance failed")
    return seconds


def row(backlog: float, loader_rates: list[float], raw_rates: list[float]) -> Row:
    loader_rate, raw_rate = median(loader_rates), median(raw_rates)
    ratio = loader_rate / raw_rate
    return Row(
        f"load throughput ({backlog:,.0f}-change backlog)",
        loader_rate,
        "changes/s",
        raw_rate,
        "raw COPY between the servers",
        ratio,
        "≥ 150,000/s and ≥ 0.8 × raw COPY",
        loader_rate >= 150_000 and ratio >= 0.8,
        loader_rates,
    )
