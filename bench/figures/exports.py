"""Each export, as a user runs it (`acme <report> --output file`, a process of its own), at
the large warehouse, live and --as-of a moment just before the newest load (the whole
history to read through); the baseline is psql writing the same query's rows to a file with
\\copy (for as-of, with the same acme.as_of setting). The open_orders export's peak memory is
the memory figure's second half."""

from __future__ import annotations

from bench.cluster import Pair
from bench.measure import interleaved, median, psql, python_module, run_child
from bench.results import Row
from exporter.reports import AS_OF_SUFFIX, REPORTS, export_query

EXPORTS = ("open_orders", "top_delivery_dates", "pending_items", "top_customers")
# Seconds; 1 s for the others. pending_items reads an aggregate kept up to date each cycle
# (agg_pending_items_by_product) instead of joining 5M items, and is held to what that buys.
LIMITS = {"open_orders": 5.0, "pending_items": 0.3}
AS_OF_LIMITS = {"open_orders": 3.0}


def run(pair: Pair, directory, reps: int, progress) -> tuple[list[Row], float, int]:
    rows, peaks = [], []
    (open_rows,) = pair.analytics("select count(*) from reports.open_orders", fetch=True)[0]
    (moment,) = pair.analytics(
        "select complete_through - interval '1 millisecond' from staging.load_state", fetch=True
    )[0]
    for name in EXPORTS:
        for as_of in (None, moment):
            rows.append(export_row(pair, directory, reps, progress, name, as_of, open_rows, peaks))
    return rows, max(peaks), open_rows


def export_row(pair, directory, reps, progress, name, as_of, open_rows, peaks) -> Row:
    report = REPORTS[name]
    relation = report.relation + AS_OF_SUFFIX if as_of else report.relation
    query = export_query(report, 3 if report.limited else None, relation)
    moment = ["--as-of", as_of.isoformat()] if as_of else []

    def ours() -> float:
        target = str(directory / f"{name}.csv")
        command = python_module("cli", name, "--output", target, *moment)
        if name == "open_orders" and not as_of:
            peaks.append(run_child(command, pair.environment(), memory=True).max_rss_mb)
        return run_child(command, env=pair.environment()).seconds

    def raw() -> float:
        target = directory / f"{name}.psql.csv"
        setting = ["-c", f"set acme.as_of = '{as_of.isoformat()}'"] if as_of else []
        command = f"\\copy ({query}) to '{target}' with (format csv, header)"
        return run_child(psql(pair.analytics_uri, *setting, "-c", command)).seconds

    figures = interleaved(reps, {"ours": ours, "raw": raw})
    seconds, baseline = median(figures["ours"]), median(figures["raw"])
    limit = (AS_OF_LIMITS if as_of else LIMITS).get(name, 1.0)
    label = f"export {name}" + (" --as-of" if as_of else "")
    progress(f"  {label}: {seconds:.2f}s (psql {baseline:.2f}s)")
    return Row(
        label + (f" ({open_rows:,} rows)" if name == "open_orders" and not as_of else ""),
        seconds,
        "s",
        baseline,
        "psql \\copy of the same query",
        seconds / baseline,
        f"≤ {limit:g} s",
        seconds <= limit,
        figures["ours"],
    )
