"""The moment a built warehouse reflects: what every export prints, `acme pipeline status`
shows, and `--as-of` is bounded by.

A load records the moment the staged changes are complete up to (loader/copy_changes.py,
complete_through()): every change that committed before it has landed. A model built through
a load is complete up to that load's moment, so a live export reflects the moment of the
load its marts were built through, and an as-of export can answer any moment between the
start of capture and the moment of the load its history models were built through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.marts import HISTORY_YML, MARTS_YML, read_incremental_model_names

REPORT_MODELS = read_incremental_model_names((MARTS_YML,))
# every model in history.yml: the four histories and the pending-items history an as-of
# pending_items reads
HISTORY_MODELS = read_incremental_model_names((HISTORY_YML,))

# The moment of the newest load the given models have all applied, the newest change_id it
# holds, and how many of the models have applied anything (a model never built has no row).
BUILT_THROUGH = """
    with applied as (
        select min(through_load_id) as load_id, count(*) as models
        from staging.applied_loads
        where model_name = any(%(models)s)
    )

    select
        case
            -- the newest load: the watermark's moment, which loads that landed nothing since
            -- have moved forward
            when applied.load_id >= (select max(load_id) from staging.load_batches)
                then (select complete_through from staging.load_state)
            else (
                select complete_through
                from staging.load_batches
                where load_id <= applied.load_id and complete_through is not null
                order by load_id desc
                limit 1
            )
        end,
        (
            select max(last_change_id)
            from staging.load_batches
            where load_id <= applied.load_id
        ),
        applied.models
    from applied
"""


@dataclass(frozen=True)
class Moment:
    """Every change committed before `complete_through` is in (None where the source does
    not track commit times), through change_id `change_id`."""

    complete_through: datetime | None
    change_id: int | None

    def describe(self) -> str:
        if self.complete_through is None:
            return f"reflects the changes through change_id {self.change_id}"
        return (
            f"reflects every change committed before {utc(self.complete_through)} "
            f"(through change_id {self.change_id})"
        )


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def built_through(cur, models: tuple[str, ...]) -> Moment | None:
    """The moment the models are all built through, or None when one was never built."""
    cur.execute(BUILT_THROUGH, {"models": list(models)})
    complete_through, change_id, built = cur.fetchone()
    if built < len(models):
        return None
    return Moment(complete_through, change_id)
