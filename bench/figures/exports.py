"""Each export, as a user runs it (`acme <report> --output file`, a process of its own), at
the large warehouse; the baseline is psql writing the same query's rows to a file with
\\copy. The open_orders export's peak memory is the memory figure's second half."""

from __future__ import annotations

from bench.cluster import Pair
from bench.measure import interleaved, median, psql, python_module, run_child
from bench.results import Row
from exporter.reports import REPORTS, export_query

EXPORTS = ("open_orders", "top_delivery_dates", "pending_items", "top_customers")
# Seconds; 1 s for the others. pending_items reads an aggregate kept up to date each cycle
# (agg_pending_items_by_product) instead of joining 5M items, and is held to what that buys.
LIMITS = {"open_orders": 5.0, "pending_items": 0.3}


def run(pair: Pair, directory, reps: int, progress) -> tuple[list[Row], float, int]:
    rows, peaks = [], []
    (open_rows,) = pair.analytics("select count(*) from reports.open_orders", fetch=True)[0]
    for name in EXPORTS:
        report = REPORTS[name]
        query = export_query(report, 3 if report.limited else None)

        def ours(name=name) -> float:
            command = python_module("cli", name, "--output", str(directory / f"{name}.csv"))
            if name == "open_orders":
                peaks.append(run_child(command, pair.environment(), memory=True).max_rss_mb)
            return run_child(command, env=pair.environment()).seconds

        def raw(query=query, name=name) -> float:
            target = directory / f"{name}.psql.csv"
            command = f"\\copy ({query}) to '{target}' with (format csv, header)"
            return run_child(psql(pair.analytics_uri, "-c", command)).seconds

        figures = interleaved(reps, {"ours": ours, "raw": raw})
        seconds, baseline = median(figures["ours"]), median(figures["raw"])
        limit = LIMITS.get(name, 1.0)
        progress(f"  {name}: {seconds:.2f}s (psql {baseline:.2f}s)")
        rows.append(
            Row(
                f"export {name}" + (f" ({open_rows:,} rows)" if name == "open_orders" else ""),
                seconds,
                "s",
                baseline,
                "psql \\copy of the same query",
                seconds / baseline,
                f"≤ {limit:g} s",
                seconds <= limit,
                figures["ours"],
            )
        )
    return rows, max(peaks), open_rows
