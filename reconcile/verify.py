"""`acme verify`: compares each captured source table with its warehouse table, and with the
current versions of its history model.

Per table: row counts and an order-independent hash of every row's values (the sum of each
row's md5, so a single wrong value changes it). Where they differ, both sides are streamed
in key order through server-side cursors and merged, to name the first differing keys
without holding either table in memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from psycopg2 import sql
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ

from connections.connect import connected
from connections.settings import ANALYTICS, FINANCE
from loader.capture import require_installed
from loader.lag import unloaded_changes
from loader.watermark import read_watermark
from pipeline.marts import HISTORIES, MARTS

# The current-state table the dbt marts keep for each captured source table, and the history
# model whose current versions must hold the same rows.
WAREHOUSE_TABLES = {mart.source: mart.relation for mart in MARTS}
HISTORY_TABLES = {history.source: history.relation for history in HISTORIES}
DIFFERING_KEYS_SHOWN = 5
FETCH_SIZE = 10_000


@dataclass
class TableResult:
    source_table: str
    warehouse_table: str
    source_rows: int
    warehouse_rows: int | None
    matches: bool
    differing_keys: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class VerifyResult:
    tables: list[TableResult]
    pending_changes: int

    @property
    def ok(self) -> bool:
        return all(table.matches for table in self.tables)

    @property
    def rows_verified(self) -> int:
        return sum(table.source_rows for table in self.tables)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "pending_changes": self.pending_changes,
            "rows_verified": self.rows_verified,
            "tables": [asdict(table) for table in self.tables],
        }


def verify() -> VerifyResult:
    with (
        connected(FINANCE, application_name="acme verify") as source,
        connected(ANALYTICS, application_name="acme verify") as warehouse,
    ):
        for conn in (source, warehouse):
            conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        with source.cursor() as cur:
            require_installed(cur)
            cur.execute("set local datestyle = 'ISO, YMD'")
            cur.execute("select table_schema, table_name from cdc.captured_tables order by 1, 2")
            captured = cur.fetchall()
            pending = pending_changes(cur, warehouse)
        with warehouse.cursor() as cur:
            cur.execute("set local datestyle = 'ISO, YMD'")
            applied = applied_loads(cur)
        results = [
            compare_table(source, warehouse, table, WAREHOUSE_TABLES.get(table))
            for table in captured
        ]
        for table in captured:
            if table not in HISTORY_TABLES:
                continue
            history, mart = HISTORY_TABLES[table], WAREHOUSE_TABLES.get(table)
            if mart is not None and applied.get(history[1], 0) < applied.get(mart[1], 0):
                results.append(
                    history_behind(table, history, applied.get(history[1]), applied[mart[1]])
                )
            else:
                results.append(compare_table(source, warehouse, table, history, current_only=True))
    return VerifyResult(results, pending)


def applied_loads(cur) -> dict[str, int]:
    """The newest load each incremental model has applied (none before the first build)."""
    cur.execute("select to_regclass('staging.applied_loads') is not null")
    if not cur.fetchone()[0]:
        return {}
    cur.execute("select model_name, through_load_id from staging.applied_loads")
    return dict(cur.fetchall())


def history_behind(
    table: tuple[str, str], history: tuple[str, str], history_load: int | None, mart_load: int
) -> TableResult:
    """A history model not yet built through the loads its mart has applied: `--follow`
    builds it on its own interval, so its current versions lag the source until then, and
    comparing them now would report that lag as a fault."""
    return TableResult(
        ".".join(table),
        ".".join(history) + " (current versions)",
        0,
        None,
        True,
        note=(
            f"not compared: built through load {history_load}, its mart through {mart_load} "
            "(--follow builds the history every --history-interval seconds; verify again "
            "after its next build)"
        ),
    )


def pending_changes(source_cur, warehouse) -> int:
    """Committed changes not yet landed: a difference is expected until they are."""
    with warehouse.cursor() as cur:
        watermark = read_watermark(cur)
    return unloaded_changes(source_cur, watermark)[0]


def compare_table(
    source,
    warehouse,
    table: tuple[str, str],
    target: tuple[str, str] | None,
    current_only: bool = False,
) -> TableResult:
    """target: the warehouse table; current_only: a history model, whose current versions are
    compared."""
    source_name = ".".join(table)
    with source.cursor() as cur:
        key_columns = primary_key_columns(cur, table)
        column_types = table_columns(cur, table)
    columns = list(column_types)
    if target is None:
        with source.cursor() as cur:
            source_rows, _ = table_fingerprint(cur, sql.Identifier(*table), columns, column_types)
        return TableResult(
            source_name, "-", source_rows, None, False, note="no warehouse table is built for it"
        )
    target_name = ".".join(target) + (" (current versions)" if current_only else "")
    rows = relation_sql(target, current_only)
    with warehouse.cursor() as cur:
        warehouse_columns = set(table_columns(cur, target))
    if not warehouse_columns:
        with source.cursor() as cur:
            source_rows, _ = table_fingerprint(cur, sql.Identifier(*table), columns, column_types)
        return TableResult(
            source_name,
            target_name,
            source_rows,
            None,
            False,
            note="warehouse table missing: run `acme pipeline run`",
        )
    shared = [column for column in columns if column in warehouse_columns]
    with source.cursor() as cur:
        source_rows, source_hash = table_fingerprint(
            cur, sql.Identifier(*table), shared, column_types
        )
    with warehouse.cursor() as cur:
        warehouse_rows, warehouse_hash = table_fingerprint(cur, rows, shared, column_types)
    # A warehouse column the source no longer has was renamed or dropped there: the
    # warehouse cannot be kept right for it, so the table does not match.
    gone = sorted(warehouse_columns - set(columns) - LINEAGE_COLUMNS)
    result = TableResult(
        source_name,
        target_name,
        source_rows,
        warehouse_rows,
        (source_rows, source_hash) == (warehouse_rows, warehouse_hash) and not gone,
    )
    notes = []
    if gone:
        notes.append(f"not in the source (renamed or dropped there?): {', '.join(gone)}")
    missing = [column for column in columns if column not in warehouse_columns]
    if missing:
        notes.append(f"not in the warehouse, not compared: {', '.join(missing)}")
    result.note = "; ".join(notes)
    if (source_rows, source_hash) != (warehouse_rows, warehouse_hash):
        result.differing_keys = first_differing_keys(
            source, warehouse, table, rows, key_columns, shared, column_types
        )
    return result


# The marts' and history models' own columns, which no source table has (cdc_current_state(),
# cdc_history()).
LINEAGE_COLUMNS = {
    "last_change_id",
    "last_changed_at",
    "last_change_operation",
    "last_load_id",
    "valid_from",
    "valid_to",
    "is_current",
    "change_id",
    "txid",
    "ended_by",
    "ended_by_change_id",
}


def relation_sql(relation: tuple[str, str], current_only: bool = False) -> sql.Composable:
    """The rows compared: a table's, or a history model's current versions."""
    if not current_only:
        return sql.Identifier(*relation)
    return sql.SQL("(select * from {} where is_current) as current_versions").format(
        sql.Identifier(*relation)
    )


def primary_key_columns(cur, table: tuple[str, str]) -> list[str]:
    """The key capture identifies rows by (sql/triggers: cdc.key_columns)."""
    cur.execute("select cdc.key_columns(format('%%I.%%I', %s, %s)::regclass)", table)
    return cur.fetchone()[0]


def table_columns(cur, table: tuple[str, str]) -> dict[str, str]:
    """Column -> data type, in column order."""
    cur.execute(
        "select column_name::text, data_type::text from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        table,
    )
    return dict(cur.fetchall())


def row_text(columns: list[str], column_types: dict[str, str]) -> sql.Composed:
    """One row's values as text, the same on both servers for the same values: numbers by
    value (trim_scale: 88.7400 and 88.74 are one price, whatever scale either side keeps)."""
    values = [
        sql.SQL("trim_scale({})").format(sql.Identifier(column))
        if column_types.get(column) == "numeric"
        else sql.Identifier(column)
        for column in columns
    ]
    return sql.SQL("row({})::text").format(sql.SQL(", ").join(values))


def table_fingerprint(
    cur, rows: sql.Composable, columns: list[str], column_types: dict[str, str]
) -> tuple[int, str]:
    cur.execute(
        sql.SQL(
            "select count(*), coalesce(sum(('x' || left(md5({row}), 16))::bit(64)::bigint"
            "::numeric), 0)::text from {table}"
        ).format(row=row_text(columns, column_types), table=rows)
    )
    count, digest = cur.fetchone()
    return count, digest


def first_differing_keys(
    source, warehouse, table, target_rows, key_columns, columns, column_types
) -> list[str]:
    """Merges both sides in key order; a key missing on one side or hashed differently."""
    query = sql.SQL("select {keys}, md5({row}) from {table} order by {keys}")
    keys = sql.SQL(", ").join(map(sql.Identifier, key_columns))
    width = len(key_columns)
    with (
        source.cursor(name="verify_source") as left,
        warehouse.cursor(name="verify_warehouse") as right,
    ):
        for cursor, relation in ((left, sql.Identifier(*table)), (right, target_rows)):
            cursor.itersize = FETCH_SIZE
            cursor.execute(
                query.format(keys=keys, row=row_text(columns, column_types), table=relation)
            )
        differing: list[str] = []
        source_row, warehouse_row = next(left, None), next(right, None)
        while (source_row or warehouse_row) and len(differing) < DIFFERING_KEYS_SHOWN:
            source_key = source_row[:width] if source_row else None
            warehouse_key = warehouse_row[:width] if warehouse_row else None
            if warehouse_key is None or (source_key is not None and source_key < warehouse_key):
                assert source_key is not None  # the loop runs while either side has a row
                differing.append(f"{format_key(source_key)} missing from the warehouse")
                source_row = next(left, None)
            elif source_key is None or warehouse_key < source_key:
                assert warehouse_row is not None
                differing.append(f"{format_key(warehouse_key)} not in the source")
                warehouse_row = next(right, None)
            else:
                assert source_row is not None and warehouse_row is not None
                if source_row[width] != warehouse_row[width]:
                    differing.append(f"{format_key(source_key)} has other values")
                source_row, warehouse_row = next(left, None), next(right, None)
    return differing


def format_key(key: tuple) -> str:
    return ",".join(str(part) for part in key)
