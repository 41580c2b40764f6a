"""Load throughput: a backlog of changes from the change log to committed staging, by the
loader (watermark and batches included), against a raw COPY of the same rows between the two
servers (psql to psql through a pipe) into a table of the same shape and indexes."""

from __future__ import annotations

import json
import subprocess

from bench import datasets
from bench.cluster import Cluster
from bench.measure import interleaved, median, psql, python_module, run_child, timed
from bench.results import Row
from connections.connect import connect
from connections.settings import ANALYTICS
from loader.copy_changes import STAGED_COLUMNS
from loader.staging import ensure_staging

RAW_QUERY = (
    "copy (select change_id, txid::text::bigint, changed_at, table_schema, table_name, "
    "operation, primary_key, old_row, new_row, 1::bigint from cdc.change_log) to stdout"
)


def backlog_orders(changes: int) -> int:
    """Orders whose capture writes about `changes` changes (an order and its items)."""
    return max(1, changes // (1 + datasets.ITEMS_PER_ORDER))


def run(cluster: Cluster, changes: int, reps: int, progress) -> tuple[list[Row], float]:
    pair = cluster.pair("load")
    datasets.install_source(pair)
    orders = backlog_orders(changes)
    datasets.add_reference_data(pair, orders)
    datasets.add_orders(pair, orders, progress=progress)
    (backlog,) = pair.finance("select count(*) from cdc.change_log", fetch=True)[0]
    peaks: list[float] = []

    def ours() -> float:
        pair.analytics("drop schema if exists staging cascade")
        child = run_child(python_module("bench.load_once"), pair.environment(), memory=True)
        outcome = json.loads(child.stdout)
        assert outcome["changes"] == backlog, f"loaded {outcome['changes']} of {backlog}"
        peaks.append(child.max_rss_mb)
        progress(
            f"  loader: {backlog / outcome['seconds']:,.0f} changes/s, {child.max_rss_mb:.0f} MB"
        )
        return backlog / outcome["seconds"]

    def raw_copy() -> float:
        pair.analytics(
            "drop schema if exists raw_copy cascade; create schema raw_copy; "
            "create table raw_copy.change_log (like staging.change_log including all)"
        )
        source = subprocess.Popen(psql(pair.finance_uri, "-c", RAW_QUERY), stdout=subprocess.PIPE)
        seconds = timed(
            lambda: subprocess.run(
                psql(
                    pair.analytics_uri,
                    "-c",
                    f"copy raw_copy.change_log ({STAGED_COLUMNS}) from stdin",
                ),
                stdin=source.stdout,
                check=True,
            )
        )
        source.stdout.close()
        if source.wait() != 0:
            raise RuntimeError("raw COPY out of finance failed")
        progress(f"  raw COPY: {backlog / seconds:,.0f} changes/s")
        return backlog / seconds

    with pair.active():  # staging.change_log, whose shape the raw copy takes
        connection = connect(ANALYTICS, application_name="acme bench")
        try:
            ensure_staging(connection)
        finally:
            connection.close()
    figures = interleaved(reps, {"ours": ours, "raw": raw_copy})
    loader_rate, raw_rate = median(figures["ours"]), median(figures["raw"])
    ratio = loader_rate / raw_rate
    rows = [
        Row(
            f"load throughput ({backlog:,}-change backlog)",
            loader_rate,
            "changes/s",
            raw_rate,
            "raw COPY between the servers",
            ratio,
            "≥ 150,000/s and ≥ 0.8 × raw COPY",
            loader_rate >= 150_000 and ratio >= 0.8,
            figures["ours"],
        )
    ]
    return rows, max(peaks)
