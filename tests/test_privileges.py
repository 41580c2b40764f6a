"""Least privilege and safety (docs/architecture.md, "Capture"): each role can do its job
and nothing else, the SECURITY DEFINER capture trigger cannot be hijacked through
search_path, table names given on the command line never run as SQL, and no password shows
in output, logs or help."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg2
import pytest
from psycopg2 import errors

from tests.conftest import ACME, PROJECT_ROOT, run_sql

OPERATIONS_TABLES = ("customers", "products", "orders", "order_items")
WRITES = ("insert", "update", "delete", "truncate")

SOME_ROWS = """
insert into operations.customers (customer_name) values ('Acme Corp'), ('Globex');
insert into operations.products (product_name) values ('Widget');
insert into operations.orders (customer_id, order_date, delivery_date, status)
values (1, '2026-01-01', '2026-01-02', 'PENDING');
insert into operations.order_items (order_id, product_id, quantity) values (1, 1, 3);
"""


# One harmless row written by each kind of statement, per table.
INSERTS = {
    "cdc.change_log": "insert into cdc.change_log (table_schema, table_name, operation) "
    "values ('operations', 'orders', 'TRUNCATE')",
    "operations.customers": "insert into operations.customers (customer_name) values ('x')",
    "operations.products": "insert into operations.products (product_name) values ('x')",
    "operations.orders": "insert into operations.orders (customer_id, order_date, status) "
    "values (1, '2026-01-01', 'PENDING')",
    "operations.order_items": "insert into operations.order_items "
    "(order_id, product_id, quantity) values (1, 1, 1)",
}
UPDATED_COLUMN = {
    "cdc.change_log": "table_name",
    "operations.customers": "customer_name",
    "operations.products": "product_name",
    "operations.orders": "status",
    "operations.order_items": "quantity",
}


def write_statement(operation: str, table: str) -> str:
    column = UPDATED_COLUMN[table]
    return {
        "insert": INSERTS[table],
        "update": f"update {table} set {column} = {column}",
        "delete": f"delete from {table}",
        "truncate": f"truncate {table} cascade",
    }[operation]


def as_role(uri: str, role: str, statement: str, params=None):
    """Runs one statement as role and rolls it back: (rows affected, None) or (None, error)."""
    conn = psycopg2.connect(uri)
    try:
        with conn.cursor() as cur:
            cur.execute(f"set role {role}")
            try:
                cur.execute(statement, params)
            except psycopg2.Error as exc:
                return None, exc
            return cur.rowcount, None
    finally:
        conn.rollback()
        conn.close()


def assert_denied(uri: str, role: str, statement: str) -> None:
    _rows, error = as_role(uri, role, statement)
    assert isinstance(error, errors.InsufficientPrivilege), f"{role} may run: {statement}"


def has_table_privilege(uri: str, role: str, table: str, privilege: str) -> bool:
    return run_sql(
        uri, "select has_table_privilege(%s, %s, %s)", (role, table, privilege), fetch=True
    )[0][0]


def test_application_role_writes_operations_but_cannot_modify_the_change_log(platform):
    platform.finance(SOME_ROWS)
    changes_before = platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]
    for operation in WRITES:
        assert_denied(
            platform.finance_uri, "acme_app", write_statement(operation, "cdc.change_log")
        )
        # Denied on the table itself, not only by the schema it sits in.
        assert not has_table_privilege(
            platform.finance_uri, "acme_app", "cdc.change_log", operation.upper()
        )
    # Nor can it switch capture off.
    for statement in (
        "alter table operations.orders disable trigger acme_capture_insert",
        "drop trigger acme_capture_update on operations.orders",
        "select cdc.stop_capture('operations.orders')",
    ):
        assert_denied(platform.finance_uri, "acme_app", statement)

    # Its own writes go through the trigger into the log it cannot touch.
    conn = platform.finance_connection()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("set role acme_app")
            cur.execute("insert into operations.customers (customer_name) values ('by acme_app')")
            cur.execute("update operations.orders set status = 'PROCESSING' where order_id = 1")
            cur.execute("delete from operations.order_items where order_id = 1")
    finally:
        conn.close()
    logged = platform.finance(
        "select table_name, operation from cdc.change_log where change_id > %s order by change_id",
        (changes_before,),
        fetch=True,
    )
    assert logged == [("customers", "INSERT"), ("orders", "UPDATE"), ("order_items", "DELETE")]


def test_loader_role_reads_and_prunes_the_change_log_and_cannot_write_operations(platform):
    platform.finance(SOME_ROWS)
    for name in OPERATIONS_TABLES:
        table = f"operations.{name}"
        for operation in WRITES:
            assert_denied(platform.finance_uri, "acme_loader", write_statement(operation, table))
            assert not has_table_privilege(
                platform.finance_uri, "acme_loader", table, operation.upper()
            )
    # The log: it reads it, prunes it only through the segment functions, and writes nothing.
    rows, error = as_role(platform.finance_uri, "acme_loader", "select * from cdc.change_log")
    assert (
        error is None
        and rows == platform.finance("select count(*) from cdc.change_log", fetch=True)[0][0]
    )
    rows, error = as_role(
        platform.finance_uri,
        "acme_loader",
        "select * from cdc.drop_landed_segments('0'::xid8, 0, interval '0s')",
    )
    assert error is None and rows == 0
    for operation in ("insert", "update", "delete", "truncate"):
        assert_denied(
            platform.finance_uri, "acme_loader", write_statement(operation, "cdc.change_log")
        )
    assert_denied(platform.finance_uri, "acme_loader", "drop table cdc.change_log_s0")
    assert_denied(
        platform.finance_uri, "acme_loader", "insert into cdc.prune_state values (true, '0', 0)"
    )


REPORTS = {
    "reports.open_orders",
    "reports.open_orders_summary",
    "reports.pending_items",
    "reports.top_customers",
    "reports.top_delivery_dates",
}


def test_reporting_role_reads_the_reports_and_nothing_else(platform):
    platform.finance(SOME_ROWS)
    platform.pipeline_run()
    relations = platform.analytics(
        "select n.nspname::text, format('%I.%I', n.nspname, c.relname) "
        "from pg_class as c join pg_namespace as n on c.relnamespace = n.oid "
        "where n.nspname in ('reports', 'analytics', 'staging') and c.relkind in ('r', 'v', 'm') "
        "order by 2",
        fetch=True,
    )
    by_schema: dict[str, list[str]] = {}
    for schema, name in relations:
        by_schema.setdefault(schema, []).append(name)
    assert set(by_schema["reports"]) >= REPORTS
    assert "analytics.fact_orders" in by_schema["analytics"]
    assert {"staging.change_log", "staging.stg_operations__orders"} <= set(by_schema["staging"])
    for report in by_schema["reports"]:
        rows, error = as_role(platform.analytics_uri, "acme_reporting", f"select * from {report}")
        assert error is None, f"acme_reporting cannot read {report}: {error}"
    assert as_role(
        platform.analytics_uri, "acme_reporting", "select order_id from reports.open_orders"
    ) == (1, None)
    for relation in by_schema["analytics"] + by_schema["staging"]:
        assert_denied(platform.analytics_uri, "acme_reporting", f"select * from {relation}")
        assert not has_table_privilege(platform.analytics_uri, "acme_reporting", relation, "SELECT")
    assert_denied(platform.analytics_uri, "acme_reporting", "delete from staging.change_log")


# An attacker who may create objects puts look-alikes of what the trigger function uses in
# schemas ahead of pg_catalog, then writes as usual.
HIJACK_OBJECTS = """
grant usage on schema evil to public;
create table evil.calls (what text);
grant insert, select on evil.calls to public;
create table evil.change_log (
    change_id bigint, txid xid8, changed_at timestamptz, table_schema text, table_name text,
    operation text, primary_key jsonb, old_row jsonb, new_row jsonb
);
grant insert, select on evil.change_log to public;
create function evil.to_jsonb(anyelement) returns jsonb language plpgsql as $$
begin
    insert into evil.calls values ('to_jsonb');
    return '{"hijacked": true}';
end;
$$;
create function evil.jsonb_build_object(text, anyelement) returns jsonb language plpgsql as $$
begin
    insert into evil.calls values ('jsonb_build_object');
    return '{"hijacked": true}';
end;
$$;
create function evil.format(text, variadic text[]) returns text language plpgsql as $$
begin
    insert into evil.calls values ('format');
    return 'select 1';
end;
$$;
create temp table change_log (like evil.change_log);
create temp table captured_new_rows (customer_id bigint, customer_name text);
insert into captured_new_rows values (999, 'from a temp table');
set search_path = pg_temp, evil, pg_catalog, public;
"""


def test_capture_trigger_cannot_be_hijacked_through_search_path(platform):
    platform.finance(
        "drop schema if exists evil cascade; create schema evil authorization acme_app"
    )
    conn = platform.finance_connection()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("set role acme_app")
            cur.execute(HIJACK_OBJECTS)
            # The look-alikes do win in the attacker's own session ...
            cur.execute("select to_jsonb(1), jsonb_build_object('k', 1::bigint), format('%s', 'x')")
            assert cur.fetchone() == ({"hijacked": True}, {"hijacked": True}, "select 1")
            cur.execute("delete from evil.calls")
            # ... but not inside the capture trigger that this session's writes fire.
            cur.execute(
                "insert into operations.customers (customer_name) values ('victim') "
                "returning customer_id"
            )
            customer_id = cur.fetchone()[0]
            cur.execute(
                "update operations.customers set customer_name = 'victim 2' where customer_id = %s",
                (customer_id,),
            )
            cur.execute("delete from operations.customers where customer_id = %s", (customer_id,))
            cur.execute("select what from evil.calls")
            assert cur.fetchall() == [], "the trigger called the attacker's function"
            cur.execute("select count(*) from evil.change_log")
            assert cur.fetchone()[0] == 0
            cur.execute("select count(*) from pg_temp.change_log")
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()
        platform.finance("drop schema evil cascade")
    logged = platform.finance(
        "select operation, primary_key, old_row ->> 'customer_name', "
        "new_row ->> 'customer_name', new_row ? 'is_active' or old_row ? 'is_active' "
        "from cdc.change_log where table_name = 'customers' "
        "and operation not in ('TRUNCATE', 'SCHEMA') "
        "order by change_id",
        fetch=True,
    )
    key = {"customer_id": customer_id}
    assert logged == [
        ("INSERT", key, None, "victim", True),
        ("UPDATE", key, "victim", "victim 2", True),
        ("DELETE", key, "victim 2", None, True),
    ]


INJECTIONS = [
    "operations.orders; drop table operations.customers; --",
    "x'); drop table operations.customers; --",
    'operations"; drop table operations.customers; --',
    "operations.orders'::regclass); drop table operations.customers; --",
    "operations.orders$$; drop table operations.customers; --",
]


def assert_one_clear_line(result, *fragments) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_capture_install_binds_table_names(platform):
    platform.finance(SOME_ROWS)
    captured = platform.acme("capture", "status").stdout
    for injection in INJECTIONS:
        result = platform.acme("capture", "install", "--table", injection, check=False)
        assert_one_clear_line(result, "cannot capture", "not a table name", injection)
        assert platform.finance("select count(*) from operations.customers", fetch=True) == [(2,)]
    assert platform.acme("capture", "status").stdout == captured
    for name, reason in (
        ("cdc.change_log", "belong to the change capture itself"),
        ("operations.orders_customer_id_idx", "it is an index"),
        ("operations.no_such_table", "does not exist"),
    ):
        result = platform.acme("capture", "install", "--table", name, check=False)
        assert_one_clear_line(result, "cannot capture", reason)


def test_capture_install_quotes_a_hostile_but_valid_table_name(platform):
    hostile = "orders; drop table operations.customers; --"
    platform.finance(SOME_ROWS)
    platform.finance(f'create table operations."{hostile}" (id bigint primary key, note text)')
    platform.finance(f"insert into operations.\"{hostile}\" values (1, 'existing')")
    result = platform.acme("capture", "install", "--table", f'operations."{hostile}"')
    assert "capturing, snapshot of 1 existing rows" in result.stdout
    platform.finance(f"insert into operations.\"{hostile}\" values (2, 'new')")
    logged = platform.finance(
        "select operation, primary_key from cdc.change_log where table_name = %s "
        "and operation <> 'SCHEMA' order by change_id",
        (hostile,),
        fetch=True,
    )
    assert logged == [("TRUNCATE", None), ("SNAPSHOT", {"id": 1}), ("INSERT", {"id": 2})]
    assert platform.finance("select count(*) from operations.customers", fetch=True) == [(2,)]


# --- passwords -------------------------------------------------------------------------------

SECRET_ROLE = "acme_secret_test"


@pytest.fixture
def secret_logins(platform):
    """A login role on each server with a long, unique password, and DSNs that use it."""
    password = "Zq9-" + secrets.token_hex(24)
    dsns = {}
    for name, uri in (("finance", platform.finance_uri), ("analytics", platform.analytics_uri)):
        run_sql(uri, f"drop role if exists {SECRET_ROLE}")
        run_sql(uri, f"create role {SECRET_ROLE} login superuser password %s", (password,))
        parts = urlsplit(uri)
        dsns[name] = parts._replace(
            netloc=f"{SECRET_ROLE}:{password}@{parts.hostname}:{parts.port}"
        ).geturl()
    yield password, dsns
    for uri in (platform.finance_uri, platform.analytics_uri):
        run_sql(uri, f"reassign owned by {SECRET_ROLE} to current_user")
        run_sql(uri, f"drop owned by {SECRET_ROLE}")
        run_sql(uri, f"drop role {SECRET_ROLE}")


HELP_OF_EVERY_COMMAND = """
import click
from click.testing import CliRunner
from cli.main import acme

def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, [*path, name])

for path in walk(acme, []):
    result = CliRunner().invoke(acme, [*path, "--help"], prog_name="acme")
    assert result.exit_code == 0, (path, result.output)
    print(result.output)
"""


def test_no_password_in_output_logs_or_help(platform, secret_logins, tmp_path):
    password, dsns = secret_logins
    env = {
        "ACME_FINANCE_DSN": dsns["finance"],
        "ACME_ANALYTICS_DSN": dsns["analytics"],
        "ACME_FINANCE_PASSWORD": password,
        "ACME_ANALYTICS_PASSWORD": password,
    }
    platform.finance(SOME_ROWS)
    started = time.time()
    results = {
        " ".join(command): platform.acme(*command, env=env)
        for command in (
            ("db", "check"),
            ("capture", "status"),
            ("pipeline", "run"),
            ("pipeline", "status"),
            ("pipeline", "status", "--json"),
            ("verify",),
            ("top_customers", "--output", str(tmp_path / "top.csv")),
        )
    }
    outputs = [(name, result.stdout + result.stderr) for name, result in results.items()]
    assert f"{SECRET_ROLE}:***@" in results["db check"].stdout, "db check shows the DSN, redacted"
    status = json.loads(results["pipeline status --json"].stdout)
    assert status["rows_per_table"]["analytics.fact_orders"] == 1
    assert platform.analytics(
        "select tableowner from pg_tables where schemaname = 'analytics' "
        "and tablename = 'fact_orders'",
        fetch=True,
    ) == [(SECRET_ROLE,)], "dbt built the warehouse as the secret role"
    # A refused login names the DSN, redacted.
    wrong = platform.acme(
        "db",
        "check",
        check=False,
        env={**env, "ACME_ANALYTICS_DSN": dsns["analytics"].replace(password, password[::-1])},
    )
    outputs.append(("db check, wrong password", wrong.stdout + wrong.stderr))
    assert wrong.returncode == 1 and "refused the credentials" in wrong.stdout

    helps = subprocess.run(
        [*ACME[:1], "-c", HELP_OF_EVERY_COMMAND],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    assert helps.stdout.count("Usage: acme") >= 20
    outputs.append(("every --help", helps.stdout + helps.stderr))

    dbt_dir = Path(os.environ["ACME_HOME"]) / "dbt"
    log = dbt_dir / "logs" / "dbt.log"
    # Written by this run (dbt rotates it at 10 MB: what came before is in dbt.log.1, scanned too)
    assert log.stat().st_mtime >= started, "dbt logged this run where it is scanned"
    for path in sorted(dbt_dir.rglob("*")):
        if path.is_file():
            outputs.append((str(path), path.read_bytes().decode(errors="replace")))

    for secret in {password, quote(password, safe=""), password[::-1]}:
        leaks = [where for where, text in outputs if secret in text]
        assert leaks == [], f"the password appears in: {', '.join(leaks)}"
