"""`acme pipeline status`: how far behind the warehouse is, and what holds it back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from connections.connect import connected
from connections.settings import ANALYTICS, FINANCE
from loader.capture import capture_faults, require_installed, schema_changes_captured
from loader.copy_changes import snapshot_horizon
from loader.lag import unloaded_changes
from loader.schema_contract import SchemaEvent, unmodelled_columns
from loader.watermark import read_watermark, source_identity
from pipeline.marts import MARTS
from pipeline.moments import HISTORY_MODELS, REPORT_MODELS, Moment, built_through

WAREHOUSE_TABLES = tuple(mart.qualified_name for mart in MARTS)


@dataclass
class PipelineStatus:
    watermark_txid: int | None = None
    watermark_change_id: int | None = None
    source_matches_watermark: bool | None = None
    horizon_txid: int | None = None
    lag_changes: int = 0
    lag_seconds: float = 0.0
    oldest_open_transaction: dict | None = None
    last_load_at: str | None = None
    last_load_changes: int | None = None
    changes_staged: int = 0
    rows_per_table: dict[str, int | None] = field(default_factory=dict)
    capture_faults: list[str] = field(default_factory=list)
    schema_changes_captured: bool = False
    # Source columns no model reads, per table, as of the newest staged SCHEMA change.
    unmodelled_columns: dict[str, list[str]] = field(default_factory=dict)
    # Whether finance_db tracks commit times (track_commit_timestamp), which date the history
    # models' versions; without them, versions are dated by statement time.
    commit_times_tracked: bool | None = None
    # What the reports (the marts they read) and the history models are built through:
    # {"complete_through": every change committed before it is in, "change_id": the newest
    # change in}, or None before their first build (pipeline/moments.py).
    reports_reflect: dict | None = None
    history_reflects: dict | None = None
    # `dbt source freshness` of the staged change log (pipeline/freshness.py), when checked.
    freshness: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def pipeline_status() -> PipelineStatus:
    status = PipelineStatus()
    with (
        connected(ANALYTICS, application_name="acme status") as analytics,
        connected(FINANCE, application_name="acme status") as finance,
    ):
        with analytics, analytics.cursor() as cur:
            watermark = read_watermark(cur)
            if watermark:
                cur.execute(
                    "select loaded_at::text, change_count from staging.load_batches "
                    "order by load_id desc limit 1"
                )
                row = cur.fetchone()
                if row:
                    status.last_load_at, status.last_load_changes = row
                cur.execute("select count(*) from staging.change_log")
                status.changes_staged = cur.fetchone()[0]
            if watermark:
                status.unmodelled_columns = staged_unmodelled_columns(cur)
                status.reports_reflect = moment_dict(built_through(cur, REPORT_MODELS))
                status.history_reflects = moment_dict(built_through(cur, HISTORY_MODELS))
            for table in WAREHOUSE_TABLES:
                cur.execute("select to_regclass(%s) is not null", (table,))
                if cur.fetchone()[0]:
                    cur.execute(f"select count(*) from {table}")
                    status.rows_per_table[table] = cur.fetchone()[0]
                else:
                    status.rows_per_table[table] = None
        with finance, finance.cursor() as cur:
            require_installed(cur)
            status.horizon_txid = snapshot_horizon(cur)
            identity = source_identity(cur)
            if watermark:
                status.watermark_txid = watermark.last_txid
                status.watermark_change_id = watermark.last_change_id
                status.source_matches_watermark = watermark.source_system_identifier == identity
            status.lag_changes, status.lag_seconds = unloaded_changes(cur, watermark)
            status.oldest_open_transaction = oldest_open_transaction(cur)
            status.capture_faults = [fault.describe() for fault in capture_faults(cur)]
            status.schema_changes_captured = schema_changes_captured(cur)
            cur.execute("select current_setting('track_commit_timestamp')::boolean")
            status.commit_times_tracked = cur.fetchone()[0]
    return status


def moment_dict(moment: Moment | None) -> dict | None:
    if moment is None:
        return None
    complete_through = moment.complete_through
    return {
        "complete_through": complete_through.isoformat() if complete_through else None,
        "change_id": moment.change_id,
    }


def oldest_open_transaction(cur) -> dict | None:
    """The transaction that holds the horizon back the longest, if any: a session's, or a
    prepared (two-phase) one, which has no session and waits for COMMIT/ROLLBACK PREPARED."""
    cur.execute(
        """
        with open_transactions as (
            select pid, usename::text as user_name, application_name, state,
                   now() - xact_start as open_for, backend_xid as xid
            from pg_stat_activity
            where backend_xid is not null and pid <> pg_backend_pid()
            union all
            select null, owner::text, 'prepared transaction ' || gid, 'prepared',
                   now() - prepared, transaction
            from pg_prepared_xacts
        )
        select pid, user_name, application_name, state,
               round(extract(epoch from open_for)::numeric, 1)::float, xid::text
        from open_transactions
        order by age(xid) desc
        limit 1
        """
    )
    row = cur.fetchone()
    if row is None:
        return None
    keys = ("pid", "user", "application", "state", "age_seconds", "xid")
    return dict(zip(keys, row, strict=True))


def staged_unmodelled_columns(cur) -> dict[str, list[str]]:
    cur.execute(
        "select distinct on (table_schema, table_name) change_id, "
        "format('%I.%I', table_schema, table_name), new_row from staging.change_log "
        "where operation = 'SCHEMA' order by table_schema, table_name, change_id desc"
    )
    found = {}
    for change_id, table, columns in cur.fetchall():
        extra = unmodelled_columns(SchemaEvent(change_id, table, columns))
        if extra:
            found[table] = extra
    return found
