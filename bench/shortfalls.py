"""Why a target is not met: the measured cause, and what would close it.

The results table prints each unmet figure's entry under it (bench/results.py); a figure that
misses its target with no entry here says so, so a new shortfall is never passed over. Each
entry names the measurement behind it: a figure's own note in the same run, or
`python -m bench.capture_variants`, whose figures are in docs/architecture.md ("Capture").
"""

from __future__ import annotations

TRIGGER_ROW = (
    "the log row itself. `python -m bench.capture_variants` (one backend, 10,000 single-row "
    "inserts, medians of 3) splits the trigger's cost: the same statement-level triggers with "
    "an empty function cost 2–5 µs a row; writing the very log row the trigger writes from "
    "the statement itself, with no trigger at all, costs 15.2 µs, about what the captured "
    "insert itself costs (15–17 µs): one more heap row, its index entry, its jsonb image and "
    "a sequence number. So the target is below the price of the row with no trigger around "
    "it. Smaller rows measured there (json images, no key column) were 0–3 µs cheaper, within "
    "the noise between runs; one row per statement and row-level triggers were dearer. What "
    "would close it: not writing a row per change inside the OLTP transaction, which is "
    "logical decoding, not this product's trigger capture"
)

CAUSES = {
    "capture trigger cost per captured row": TRIGGER_ROW,
    "capture overhead, OLTP one statement per order": (
        "the log rows: a transaction here writes 3.75 rows on average (half place an order "
        "with 1–10 items, half update one order), and capture writes one log row for each, at "
        "the price of the row above; the server CPU each transaction gains is about that "
        "count times that price. The ORM mix, with a statement per row, meets its target "
        "because each statement's own cost dilutes the log rows' share. What would close it "
        "is a cheaper log row, see the trigger cost per row"
    ),
    "capture overhead, bulk UPDATE": (
        "the transition tables and the log rows. In `python -m bench.capture_variants` "
        "(100k-row UPDATE, medians of 3) the same triggers with an empty function already "
        "bring off ÷ on to 0.65–0.83: PostgreSQL keeps both images of every updated row for "
        "them. Each log row then holds the old and the new image; the update writes two "
        "jsonb images per row it changes in place. Writing those log rows from the statement "
        "itself (a CTE over RETURNING old, new), with no trigger, was dearer (0.40). What "
        "would close it: an UPDATE log row without the old image where the key did not "
        "change, which the history models and the schema checks read; not taken"
    ),
    "load throughput": (
        "writing into staging, which the raw COPY baseline pays too. `python -m "
        "bench.load_split` (857k-change bursts, medians of 2) split it: the source's side, "
        "the page query as one COPY in index order, 1.98 s (432k/s); raw COPY between the "
        "servers 7.96 s (108k/s); the loader 8.95 s, of which its paged COPYs 8.37 s and the "
        "ANALYZE of the grown staging table that the next build's plans need 0.59 s. So COPY "
        "FROM into staging's shape (jsonb parsed on input, four indexes) is most of both, and "
        "on this machine it stays under 150k/s whoever sends the rows. What would close it: "
        "staged images as text, cast by the staging models as they read (COPY of 1.2M changes "
        "into text columns took 4.05 s against 6.5 s into jsonb), a change to every staging "
        "model and to the key index, not made"
    ),
    "catch-up after": (
        "ours is two steps, the load and then the incremental dbt run (the note gives each); "
        "the load alone takes longer than native replication's whole catch-up, which applies "
        "row changes directly and builds no marts. What would close it: a load at native "
        "replication's rate (see load throughput) and a build that overlaps it"
    ),
    "freshness p50": (
        "the --follow cycle: a marker committed during a cycle waits for it to end, then for "
        "the next cycle's load and dbt run (the note gives their medians), so the median "
        "latency is about one and a half cycles. The dbt run is most of it: each model pays "
        "dbt's fixed cost, and at 1M orders the pending-items models (which make the "
        "pending_items export fast) add about 0.5 s. What would close it: a cycle under "
        "0.65 s at 1M orders, by building only the models whose sources changed"
    ),
    "freshness p95": (
        "as for p50: the tail is a marker that commits just after a cycle's load starts and "
        "waits for two whole cycles"
    ),
}


def cause_of(figure: str) -> str:
    for prefix, cause in CAUSES.items():
        if figure.startswith(prefix):
            return cause
    return "no cause recorded in bench/shortfalls.py: measure one before calling it known"
