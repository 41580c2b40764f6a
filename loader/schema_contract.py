"""The source columns the warehouse models read, and whether a source schema still fits them.

The contract is stated once, in dbt_project/models/staging/staging.yml: each staging model
stg_<schema>__<table> decodes the columns that carry a `data_type` (PostgreSQL's
format_type() spelling) from the row images of <schema>.<table>. A staging model's casts are
checked against it by the test suite.

Capture writes a SCHEMA change (the table's columns and types) when it starts and after each
DDL statement on a captured table. Before landing anything, the loader checks the SCHEMA
changes it is about to land: a modelled column that is gone (dropped or renamed), or retyped
beyond what the model's type holds without loss, stops the load with one line naming the
table, the column, both definitions and the fix. A column the models do not read is
harmless, and `acme pipeline status` lists it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from connections.dbt_project import MODELS_DIR, read_yml
from connections.errors import SchemaMismatch
from loader.watermark import LANDABLE, Watermark, not_landed_parameters

STAGING_YML = MODELS_DIR / "staging" / "staging.yml"
STAGING_MODEL = re.compile(r"stg_(?P<schema>\w+?)__(?P<table>\w+)")


@dataclass(frozen=True)
class ModelledTable:
    table: str  # schema.table
    model: str
    columns: dict[str, str]  # column -> declared type


@cache
def modelled_tables(path: Path = STAGING_YML) -> dict[str, ModelledTable]:
    """schema.table -> what its staging model decodes, read from the staging yml."""
    document = read_yml(path)
    tables = {}
    for model in document.get("models", []):
        match = STAGING_MODEL.fullmatch(model["name"])
        if not match:
            continue
        table = f"{match['schema']}.{match['table']}"
        columns = {
            column["name"]: column["data_type"]
            for column in model.get("columns", [])
            if column.get("data_type")
        }
        tables[table] = ModelledTable(table, model["name"], columns)
    return tables


# Integer types and the decimal digits they can hold.
INTEGER_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}
NUMERIC = re.compile(r"numeric(?:\((?P<precision>\d+),(?P<scale>\d+)\))?")
VARCHAR = re.compile(r"character varying(?:\((?P<length>\d+)\))?")
TIMESTAMP = re.compile(
    r"(?P<kind>timestamp|time)(?:\((?P<precision>\d)\))? (?P<zone>with|without) time zone"
)


def holds_without_loss(source_type: str, model_type: str) -> bool:
    """Whether every value of source_type casts to model_type unchanged (format_type()
    spellings). Widening is fine; anything else must be the same type."""
    source, model = normalise(source_type), normalise(model_type)
    if source == model:
        return True
    if source in INTEGER_DIGITS:
        if model in INTEGER_DIGITS:
            return INTEGER_DIGITS[model] >= INTEGER_DIGITS[source]
        target = NUMERIC.fullmatch(model)
        if target:
            return target["precision"] is None or (
                int(target["precision"]) - int(target["scale"]) >= INTEGER_DIGITS[source]
            )
        return False
    numeric_source, numeric_model = NUMERIC.fullmatch(source), NUMERIC.fullmatch(model)
    if numeric_source and numeric_model:
        if numeric_model["precision"] is None:
            return True
        if numeric_source["precision"] is None:
            return False
        source_scale, model_scale = int(numeric_source["scale"]), int(numeric_model["scale"])
        source_whole = int(numeric_source["precision"]) - source_scale
        return model_scale >= source_scale and (
            int(numeric_model["precision"]) - model_scale >= source_whole
        )
    varchar_source, varchar_model = VARCHAR.fullmatch(source), VARCHAR.fullmatch(model)
    if (varchar_source or source == "text") and (model == "text" or varchar_model):
        if varchar_model is None or varchar_model["length"] is None:
            return True
        source_length = varchar_source["length"] if varchar_source else None
        return source_length is not None and int(source_length) <= int(varchar_model["length"])
    time_source, time_model = TIMESTAMP.fullmatch(source), TIMESTAMP.fullmatch(model)
    if time_source and time_model:
        same_kind = (time_source["kind"], time_source["zone"]) == (
            time_model["kind"],
            time_model["zone"],
        )
        return same_kind and int(time_source["precision"] or 6) <= int(time_model["precision"] or 6)
    return False


def normalise(type_name: str) -> str:
    return re.sub(r"\s*,\s*", ",", type_name.strip().lower())


@dataclass(frozen=True)
class SchemaEvent:
    change_id: int
    table: str
    columns: dict[str, str]


def mismatch(event: SchemaEvent) -> str | None:
    """What in this schema the models cannot hold, as one line; None when it fits."""
    modelled = modelled_tables().get(event.table)
    if modelled is None:
        return None
    problems = []
    for column, declared in modelled.columns.items():
        actual = event.columns.get(column)
        if actual is None:
            unmodelled = [
                f"{name} {kind}"
                for name, kind in event.columns.items()
                if name not in modelled.columns
            ]
            hint = f" (new column: {', '.join(unmodelled)}; renamed?)" if unmodelled else ""
            problems.append(f"column {column} {declared} is gone{hint}")
        elif not holds_without_loss(actual, declared):
            problems.append(
                f"column {column} is now {actual}, which the model's {declared} cannot hold "
                "without loss"
            )
    if not problems:
        return None
    where = f" at change {event.change_id}" if event.change_id else ""
    return f"{event.table} changed{where}: {'; '.join(problems)}. {modelled.model} reads it"


def unmodelled_columns(event: SchemaEvent) -> list[str]:
    """Source columns no model reads (harmless; shown by `acme pipeline status`)."""
    modelled = modelled_tables().get(event.table)
    if modelled is None:
        return []
    return [column for column in event.columns if column not in modelled.columns]


THE_FIX = (
    "Nothing was loaded. Either model the change (the column's data_type in "
    "dbt_project/models/staging/staging.yml and its staging model, then `acme pipeline run "
    "--full-refresh`), or undo it on finance_db and run `acme pipeline resync` (rows written "
    "meanwhile carry the changed shape)"
)

PENDING_SCHEMA_EVENTS = f"""
    select change_id, format('%%I.%%I', table_schema, table_name), new_row
    from cdc.change_log
    where operation = 'SCHEMA' and {LANDABLE}
    order by txid, change_id
"""


def check_pending_schema_events(src, watermark: Watermark | None, horizon: int):
    """Raises SchemaMismatch, before anything lands, when a SCHEMA change about to land does
    not fit the models, unless a later one puts the table back before any of its rows
    changed in between (a rename undone at once loses nothing)."""
    src.execute(PENDING_SCHEMA_EVENTS, not_landed_parameters(watermark, horizon=horizon))
    events = [
        SchemaEvent(change_id, table, columns) for change_id, table, columns in src.fetchall()
    ]
    broken: dict[str, tuple[SchemaEvent, str]] = {}
    for event in events:
        problem = mismatch(event)
        if problem and event.table not in broken:
            broken[event.table] = (event, problem)
        elif not problem and event.table in broken:
            first, _ = broken[event.table]
            if not rows_changed_between(src, event.table, first.change_id, event.change_id):
                del broken[event.table]
    if broken:
        _event, problem = min(broken.values(), key=lambda item: item[0].change_id)
        raise SchemaMismatch(f"{problem}. {THE_FIX}")


def rows_changed_between(src, table: str, after_change_id: int, before_change_id: int) -> bool:
    schema, name = table.split(".", 1)
    src.execute(
        "select exists (select from cdc.change_log where change_id > %s and change_id < %s "
        "and table_schema = %s and table_name = %s and operation <> 'SCHEMA')",
        (after_change_id, before_change_id, schema, name),
    )
    return src.fetchone()[0]


def check_live_schema(src) -> None:
    """Where DDL is not captured (capture installed by a non-superuser), the catalog as it
    is now stands in for the SCHEMA changes: coarser, since it cannot tell when a column
    changed, but a mismatch still stops the load before anything lands."""
    src.execute(
        "select format('%I.%I', table_schema, table_name), column_types from cdc.captured_columns"
    )
    for table, columns in src.fetchall():
        problem = mismatch(SchemaEvent(0, table, columns))
        if problem:
            raise SchemaMismatch(f"{problem}. {THE_FIX}")


@dataclass(frozen=True)
class UnbuildableValue:
    table: str
    column: str
    declared: str
    change_id: int
    value: str

    def describe(self) -> str:
        shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
        return (
            f"{self.table}.{self.column} = {shown!r} (change {self.change_id}) cannot be held "
            f"by the model's {self.declared}. Nothing was built from it. Correct the value on "
            "finance_db (or widen the model's type in dbt_project/models/staging/staging.yml "
            "and its staging model, then `acme pipeline run --full-refresh`), then run `acme "
            "pipeline resync`: the staged change is then superseded and never read again"
        )


def first_unbuildable_value(cur) -> UnbuildableValue | None:
    """The first staged value that a staging model's cast would reject, or None. It reads the
    changes the staging views decode: those above the resync floor once the floor's
    snapshot has landed (dbt_project/macros/staged_changes_of.sql). Read only when a build
    has failed: it scans the staged history."""
    for modelled in modelled_tables().values():
        schema, name = modelled.table.split(".", 1)
        for column, declared in modelled.columns.items():
            cur.execute(
                """
                select change_id, new_row ->> %(column)s
                from staging.change_log
                where table_schema = %(schema)s and table_name = %(name)s
                  and operation in ('INSERT', 'UPDATE', 'SNAPSHOT')
                  and change_id >= (select staging.decoded_change_id_floor())
                  and not pg_input_is_valid(new_row ->> %(column)s, %(declared)s)
                order by change_id
                limit 1
                """,
                {"column": column, "schema": schema, "name": name, "declared": declared},
            )
            row = cur.fetchone()
            if row:
                return UnbuildableValue(modelled.table, column, declared, row[0], row[1])
    return None
