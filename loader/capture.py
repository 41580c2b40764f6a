"""`acme capture install|uninstall|status`: the change log and triggers on finance_db."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg2 import errors, sql

from connections.connect import connected
from connections.errors import CaptureIncomplete, CaptureNotInstalled, first_line
from connections.settings import FINANCE
from loader.locking import retry_on_lock_conflict, set_short_lock_wait
from loader.sql_files import apply_sql_file

DEFAULT_SCHEMA = "operations"


@dataclass(frozen=True)
class TableCapture:
    table: str
    snapshotted_rows: int | None

    def describe(self) -> str:
        if self.snapshotted_rows is None:
            return f"{self.table}: already captured"
        return f"{self.table}: capturing, snapshot of {self.snapshotted_rows} existing rows"


def install(tables: list[str] | None = None) -> list[TableCapture]:
    """Installs the change log and starts capturing the tables (default: all of operations).

    Two transactions. The first creates or upgrades capture's own objects in schema cdc and
    touches no captured table. The second puts every table's triggers in place and writes
    the snapshots: either every table is captured with its snapshot, or none changes. Apart,
    the second never holds a lock on the change log stronger than the writers' own: one
    taken before waiting for a captured table's lock would deadlock with a writer that holds
    that table and waits to write its change."""
    retry_on_lock_conflict(install_objects, "capture install")
    return retry_on_lock_conflict(lambda: capture_tables(tables), "capture install")


def install_objects() -> None:
    with connected(FINANCE, application_name="acme capture install") as conn:
        prepare_plain_log(conn)
        with conn, conn.cursor() as cur:
            set_short_lock_wait(cur)
            apply_sql_file(cur, "triggers/change_log.sql")


# Where the log's first segment starts: cdc.segment_width() of sql/triggers/change_log.sql,
# not installed yet when a plain log is prepared (tests/test_pure_functions.py checks both).
FIRST_SEGMENT_START = 10**12


def prepare_plain_log(conn) -> None:
    """A log of a release before segments is a plain table that change_log.sql attaches as a
    partition under its exclusive lock. Proving its rows fit the partition (below the first
    segment) and its operation check would read the whole log under that lock, so they are
    validated here first, in transactions that let writers on (VALIDATE takes SHARE UPDATE
    EXCLUSIVE): the attach then reads no row."""
    with conn, conn.cursor() as cur:
        set_short_lock_wait(cur)
        cur.execute("select relkind::text from pg_class where oid = to_regclass('cdc.change_log')")
        found = cur.fetchone()
        if found is None or found[0] != "r":
            return
        cur.execute(
            "select conname from pg_constraint where conrelid = 'cdc.change_log'::regclass "
            "and conname = 'change_log_segment_bound'"
        )
        if cur.fetchone() is None:
            cur.execute(
                "alter table cdc.change_log add constraint change_log_segment_bound "
                "check (change_id < %s) not valid",
                (FIRST_SEGMENT_START,),
            )
    with conn, conn.cursor() as cur:
        set_short_lock_wait(cur)
        cur.execute(
            "select conname from pg_constraint where conrelid = 'cdc.change_log'::regclass "
            "and contype = 'c' and not convalidated"
        )
        for (name,) in cur.fetchall():
            cur.execute(
                sql.SQL("alter table cdc.change_log validate constraint {}").format(
                    sql.Identifier(name)
                )
            )


def capture_tables(tables: list[str] | None) -> list[TableCapture]:
    with connected(FINANCE, application_name="acme capture install") as conn:
        try:
            with conn, conn.cursor() as cur:
                set_short_lock_wait(cur)
                targets = tables or tables_in_schema(cur, DEFAULT_SCHEMA)
                if not targets:
                    raise CaptureNotInstalled(
                        f"no tables to capture in schema {DEFAULT_SCHEMA}: create them first "
                        "(`acme db init` creates the demo schema) or name them with --table"
                    )
                results = []
                for table in [resolve_table(cur, name) for name in targets]:
                    cur.execute("select cdc.start_capture(%s::regclass)", (table,))
                    results.append(TableCapture(table, cur.fetchone()[0]))
                cur.execute("select cdc.retire_generic_capture()")
                return results
        except errors.InvalidTableDefinition as exc:
            raise CaptureNotInstalled(first_line(exc)) from exc


# Tables capture must never be pointed at: the change log itself (its trigger would write
# into the table that fires it) and the server's own catalogs.
UNCAPTURABLE_SCHEMAS = ("cdc", "pg_catalog", "information_schema", "pg_toast")
TABLE_KINDS = {"r": "table", "p": "partitioned table"}
RELATION_KINDS = {
    "i": "an index",
    "I": "an index",
    "S": "a sequence",
    "v": "a view",
    "m": "a materialized view",
    "c": "a composite type",
    "f": "a foreign table",
}


def resolve_table(cur, name: str) -> str:
    """The table a --table name means, as schema.table, or CaptureNotInstalled saying why not.

    The name reaches the server only as a bound parameter cast to regclass, so whatever it
    holds is parsed as a name and never run as SQL.
    """
    try:
        cur.execute(
            "select n.nspname::text, c.relname::text, c.relkind::text, "
            "format('%%I.%%I', n.nspname, c.relname) "
            "from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid "
            "where c.oid = %s::regclass",
            (name,),
        )
    except (errors.InvalidName, errors.SyntaxError, errors.FeatureNotSupported) as exc:
        raise CaptureNotInstalled(
            f"cannot capture {name!r}: not a table name ({first_line(exc)}); "
            "name a table as schema.table"
        ) from exc
    except (errors.UndefinedTable, errors.InvalidSchemaName) as exc:
        raise CaptureNotInstalled(f"cannot capture {name!r}: {first_line(exc)}") from exc
    schema, _table, kind, qualified = cur.fetchone()
    if kind not in TABLE_KINDS:
        raise CaptureNotInstalled(
            f"cannot capture {qualified}: it is {RELATION_KINDS.get(kind, 'not a table')}, "
            "and capture works on tables"
        )
    if schema in UNCAPTURABLE_SCHEMAS or schema.startswith(("pg_temp_", "pg_toast_temp_")):
        raise CaptureNotInstalled(
            f"cannot capture {qualified}: tables of schema {schema} belong to "
            + ("the change capture itself" if schema == "cdc" else "the server")
        )
    return qualified


def uninstall(purge: bool = False) -> list[str]:
    """Stops capturing every table; with purge, drops the change log too."""
    with (
        connected(FINANCE, application_name="acme capture uninstall") as conn,
        conn,
        conn.cursor() as cur,
    ):
        if not change_log_exists(cur):
            return []
        cur.execute("select table_schema, table_name from cdc.captured_tables order by 1, 2")
        stopped = [f"{schema}.{name}" for schema, name in cur.fetchall()]
        for table in stopped:
            cur.execute("select cdc.stop_capture(%s::regclass)", (table,))
        if purge:
            cur.execute("drop schema cdc cascade")
        return stopped


@dataclass(frozen=True)
class CaptureStatus:
    installed: bool
    tables: list[str]
    changes_in_log: int
    oldest_change_at: str | None
    newest_change_at: str | None
    faults: list[CaptureFault] = field(default_factory=list)
    schema_changes_captured: bool = False
    segments: int = 0

    @property
    def whole(self) -> bool:
        return self.installed and bool(self.tables) and not self.faults


def status() -> CaptureStatus:
    with (
        connected(FINANCE, application_name="acme capture status") as conn,
        conn,
        conn.cursor() as cur,
    ):
        if not change_log_exists(cur):
            return CaptureStatus(False, [], 0, None, None)
        cur.execute("select table_schema, table_name from cdc.captured_tables order by 1, 2")
        tables = [f"{schema}.{name}" for schema, name in cur.fetchall()]
        cur.execute(
            "select count(*), min(changed_at)::text, max(changed_at)::text from cdc.change_log"
        )
        count, oldest, newest = cur.fetchone()
        faults = capture_faults(cur) if tables else []
        return CaptureStatus(
            True,
            tables,
            count,
            oldest,
            newest,
            faults,
            schema_changes_captured(cur),
            segment_count(cur),
        )


def require_installed(cur) -> None:
    """Raises CaptureNotInstalled, with the fix, when finance_db has no change log, one
    installed by an older version (it lacks the log's segments), or one whose sequence is
    past its partitions."""
    if not change_log_exists(cur):
        raise CaptureNotInstalled(
            "capture is not installed on finance_db (no cdc.change_log): run `acme capture install`"
        )
    cur.execute("select to_regclass('cdc.log_segments') is not null")
    if not cur.fetchone()[0]:
        raise CaptureNotInstalled(
            "capture on finance_db was installed by an older version: run `acme capture "
            "install` to upgrade it in place (every change in the log is kept)"
        )
    cur.execute(
        "select exists (select from cdc.log_segments where segment = cdc.current_segment())"
    )
    if not cur.fetchone()[0]:
        raise CaptureNotInstalled(
            "finance_db's change_id sequence is in a segment of the change log that has no "
            "partition, so every captured write fails (a dump taken while `acme capture prune` "
            "moved the sequence was restored): run `acme capture install`, which attaches it"
        )


@dataclass(frozen=True)
class CaptureFault:
    table: str
    trigger: str
    fault: str  # missing, disabled, or not firing ALWAYS

    def describe(self) -> str:
        return f"{self.table}: trigger {self.trigger} {self.fault}"


def capture_faults(cur) -> list[CaptureFault]:
    """The capture triggers of captured tables that are missing or do not fire ALWAYS."""
    cur.execute(
        "select format('%I.%I', table_schema, table_name), trigger_name, fault "
        "from cdc.capture_faults order by 1, 2"
    )
    return [CaptureFault(*row) for row in cur.fetchall()]


def require_capture_whole(cur) -> None:
    """Raises CaptureIncomplete when a capture trigger is missing or disabled: writes may have
    passed uncaptured, so the warehouse cannot be trusted to match the source."""
    faults = capture_faults(cur)
    if faults:
        raise CaptureIncomplete(
            f"capture is not whole on finance_db ({'; '.join(f.describe() for f in faults)}), "
            "so writes may have passed uncaptured. Nothing was loaded; run `acme capture "
            "install` to restore the triggers, then `acme pipeline resync` to re-snapshot"
        )


def schema_changes_captured(cur) -> bool:
    """Whether DDL on captured tables reaches the change log (an event trigger, which only a
    superuser can create)."""
    cur.execute(
        "select exists (select from pg_event_trigger where evtname = 'acme_capture_schema')"
    )
    return cur.fetchone()[0]


def segment_count(cur) -> int:
    """The change log's segments: its partitions, an upgraded log's legacy one too."""
    cur.execute("select count(*) from pg_partition_tree('cdc.change_log') where isleaf")
    return cur.fetchone()[0]


def change_log_exists(cur) -> bool:
    cur.execute("select to_regclass('cdc.change_log') is not null")
    return cur.fetchone()[0]


def tables_in_schema(cur, schema: str) -> list[str]:
    cur.execute(
        "select format('%%I.%%I', table_schema, table_name) from information_schema.tables "
        "where table_schema = %s and table_type = 'BASE TABLE' order by table_name",
        (schema,),
    )
    return [row[0] for row in cur.fetchall()]
