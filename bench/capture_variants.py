"""`python -m bench.capture_variants [--quick]`: what each alternative capture design would
cost the OLTP database, measured against the capture as shipped and against no capture.

Not part of `make bench`: it answers a design question once (docs/architecture.md,
"Capture", records the answer), and is kept so the answer can be measured again. Variants,
each applied to the shipped install and undone after its measurement:

- shipped: static per-table functions, jsonb images and key, one full index (txid, change_id);
- + change_id key: the log's former primary key on change_id, a second full index;
- json images: json instead of jsonb for the images and key (no binary conversion on write);
- no key column: the trigger leaves primary_key null (the loader would derive it);
- one row per statement: the statement's rows aggregated into one log row (jsonb_agg);
- empty trigger: the same statement-level triggers and transition tables, the function
  returning at once: the floor any PL/pgSQL statement trigger pays, whatever it writes;
- row-level trigger: FOR EACH ROW triggers writing the same log row from NEW and OLD, no
  transition tables: what the statement-level design costs a single-row write;
- log row without a trigger: the triggers dropped, and each workload writes the same log
  rows itself (RETURNING into an INSERT into the log): the price of the log row alone.

Each is timed on one backend: LOOP_ROWS single-row inserts into order_items, a bulk
INSERT … SELECT of BULK_ROWS items and a bulk UPDATE of BULK_ROWS orders, with the log
truncated before each measurement; "off" is the same with the triggers dropped. Repetitions
are interleaved, the order rotating, and the medians printed.
"""

from __future__ import annotations

import argparse
import re

from bench import datasets
from bench.cluster import Pair, bench_cluster
from bench.measure import median, timed, turn_order

LOOP_ROWS = 10_000
BULK_ROWS = 100_000
TABLES = ("operations.order_items", "operations.orders")

PER_STATEMENT = """
create or replace function cdc.{name}() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $capture$
begin
    if tg_op = 'INSERT' then
        insert into cdc.change_log (table_schema, table_name, operation, new_row)
        select tg_table_schema, tg_table_name, 'INSERT', jsonb_agg(to_jsonb(cdc_new.*))
        from captured_new_rows as cdc_new;
    elsif tg_op = 'UPDATE' then
        insert into cdc.change_log (table_schema, table_name, operation, old_row, new_row)
        select
            tg_table_schema, tg_table_name, 'UPDATE',
            (select jsonb_agg(to_jsonb(cdc_old.*)) from captured_old_rows as cdc_old),
            (select jsonb_agg(to_jsonb(cdc_new.*)) from captured_new_rows as cdc_new);
    elsif tg_op = 'DELETE' then
        insert into cdc.change_log (table_schema, table_name, operation, old_row)
        select tg_table_schema, tg_table_name, 'DELETE', jsonb_agg(to_jsonb(cdc_old.*))
        from captured_old_rows as cdc_old;
    else
        insert into cdc.change_log (table_schema, table_name, operation)
        values (tg_table_schema, tg_table_name, 'TRUNCATE');
    end if;
    return null;
end;
$capture$
"""


EMPTY = """
create or replace function cdc.{name}() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $capture$ begin return null; end; $capture$
"""

PER_ROW = """
create or replace function cdc.{name}() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $capture$
begin
    if tg_op = 'INSERT' then
        insert into cdc.change_log (table_schema, table_name, operation, primary_key, new_row)
        values (tg_table_schema, tg_table_name, 'INSERT', {new_key}, to_jsonb(new));
    elsif tg_op = 'UPDATE' then
        insert into cdc.change_log
            (table_schema, table_name, operation, primary_key, old_row, new_row)
        values (tg_table_schema, tg_table_name, 'UPDATE', {new_key}, to_jsonb(old), to_jsonb(new));
    else
        insert into cdc.change_log (table_schema, table_name, operation, primary_key, old_row)
        values (tg_table_schema, tg_table_name, 'DELETE', {old_key}, to_jsonb(old));
    end if;
    return null;
end;
$capture$
"""


def capture_functions(pair: Pair) -> dict[str, str]:
    """Each measured table's capture function: its name and its definition as shipped."""
    return dict(
        pair.finance(
            "select cdc.capture_function_name(t::regclass), "
            "pg_get_functiondef(format('cdc.%%I()', cdc.capture_function_name(t::regclass))"
            "::regprocedure) from unnest(%s::text[]) as t",
            (list(TABLES),),
            fetch=True,
        )
    )


def function_of(pair: Pair, table: str) -> str:
    query = "select cdc.capture_function_name(%s::regclass)"
    return pair.finance(query, (table,), fetch=True)[0][0]


def rewrite(pair: Pair, change) -> None:
    for definition in capture_functions(pair).values():
        pair.finance(change(definition))


def set_variant(pair: Pair, variant: str, on: bool) -> None:
    """Applies (on) or undoes the variant on the shipped install."""
    if variant in ("off", "log row without a trigger"):
        datasets.set_capture(pair, not on)
    elif variant == "+ change_id key":
        pair.finance(
            "alter table cdc.change_log add constraint change_log_pkey primary key (change_id)"
            if on
            else "alter table cdc.change_log drop constraint change_log_pkey"
        )
    elif variant == "json images":
        kind = "json" if on else "jsonb"
        pair.finance(
            "truncate cdc.change_log; alter table cdc.change_log "
            + ", ".join(
                f"alter column {column} type {kind} using {column}::{kind}"
                for column in ("primary_key", "old_row", "new_row")
            )
        )
        if on:
            rewrite(
                pair,
                lambda text: text.replace("to_jsonb(", "to_json(").replace(
                    "jsonb_build_object(", "json_build_object("
                ),
            )
        else:
            datasets.set_capture(pair, False)
            datasets.set_capture(pair, True)
    elif variant == "no key column":
        if on:
            rewrite(pair, lambda text: re.sub(r"jsonb_build_object\([^()]*\)", "null::jsonb", text))
        else:
            datasets.set_capture(pair, False)
            datasets.set_capture(pair, True)
    elif variant in ("one row per statement", "empty trigger"):
        if on:
            body = PER_STATEMENT if variant == "one row per statement" else EMPTY
            for name in capture_functions(pair):
                pair.finance(body.format(name=name))
        else:
            datasets.set_capture(pair, False)
            datasets.set_capture(pair, True)
    elif variant == "row-level trigger":
        if on:
            functions = capture_functions(pair)
            for table in TABLES:
                name = function_of(pair, table)
                key = re.search(r"jsonb_build_object\([^()]*\)", functions[name]).group(0)
                pair.finance(
                    PER_ROW.format(
                        name=name,
                        new_key=key.replace("cdc_new.", "new."),
                        old_key=key.replace("cdc_new.", "old."),
                    )
                    + "".join(
                        f"; drop trigger acme_capture_{op} on {table}"
                        for op in ("insert", "update", "delete")
                    )
                    + f"; create trigger acme_capture_row after insert or update or delete "
                    f"on {table} for each row execute function cdc.{name}()"
                )
        else:
            pair.finance("".join(f"drop trigger acme_capture_row on {t};" for t in TABLES))
            datasets.set_capture(pair, False)
            datasets.set_capture(pair, True)


VARIANTS = (
    "off",
    "shipped",
    "+ change_id key",
    "json images",
    "no key column",
    "one row per statement",
    "empty trigger",
    "row-level trigger",
    "log row without a trigger",
)


def workloads(pair: Pair, bulk_rows: int) -> dict[str, str]:
    order_id, product_id, products = pair.finance(
        "select min(order_id), min(product_id), max(product_id) "
        "from operations.orders, operations.products",
        fetch=True,
    )[0]
    return {
        "per row": (
            f"do $$ begin for i in 1..{LOOP_ROWS} loop "
            "insert into operations.order_items (order_id, product_id, quantity) "
            f"values ({order_id}, {product_id}, 1); end loop; end $$"
        ),
        "bulk insert": (
            "insert into operations.order_items (order_id, product_id, quantity) "
            f"select id, 1 + id % {products}, 1 + id % 7 from generate_series(1, {bulk_rows}) as id"
        ),
        "bulk update": (
            "update operations.orders set status = case status when 'PENDING' then "
            f"'PROCESSING' else 'PENDING' end where order_id <= {bulk_rows}"
        ),
    }


def written_with_log_rows(statements: dict[str, str]) -> dict[str, str]:
    """The same workloads, each writing the log rows the shipped trigger would write."""
    log = "insert into cdc.change_log (table_schema, table_name, operation, primary_key, "
    per_row = (
        statements["per row"]
        .replace("do $$ begin", "do $$ declare item operations.order_items; begin")
        .replace(
            "; end loop;",
            " returning * into item; "
            + log
            + "new_row) values ('operations', 'order_items', 'INSERT', "
            "jsonb_build_object('order_item_id', item.order_item_id), to_jsonb(item)); end loop;",
        )
    )
    return {
        "per row": per_row,
        "bulk insert": (
            f"with written as ({statements['bulk insert']} returning *) "
            + log
            + "new_row) select 'operations', 'order_items', 'INSERT', "
            "jsonb_build_object('order_item_id', w.order_item_id), to_jsonb(w) "
            "from written as w"
        ),
        "bulk update": (
            f"with written as ({statements['bulk update']} returning new.order_id, "
            "to_jsonb(old) as old_row, to_jsonb(new) as new_row) "
            + log
            + "old_row, new_row) select 'operations', 'orders', 'UPDATE', "
            "jsonb_build_object('order_id', order_id), old_row, new_row from written"
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capture_variants", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition, small sizes")
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args()
    reps = 1 if options.quick else options.reps
    bulk_rows = 2_000 if options.quick else BULK_ROWS
    times: dict[tuple[str, str], list[float]] = {}
    with bench_cluster(lambda _message: None) as cluster:
        pair = cluster.pair("variants")
        datasets.install_source(pair)
        datasets.add_reference_data(pair, bulk_rows)
        datasets.set_capture(pair, False)
        datasets.add_orders(pair, bulk_rows)
        datasets.set_capture(pair, True)
        statements = workloads(pair, bulk_rows)
        for rep in range(reps):
            for variant in turn_order(rep, list(VARIANTS)):
                set_variant(pair, variant, True)
                chosen = (
                    written_with_log_rows(statements)
                    if variant == "log row without a trigger"
                    else statements
                )
                for workload, statement in chosen.items():
                    pair.finance("truncate cdc.change_log; checkpoint")
                    seconds = timed(lambda statement=statement: pair.finance(statement))
                    times.setdefault((variant, workload), []).append(seconds)
                set_variant(pair, variant, False)
                print(f"rep {rep + 1}: {variant} done", flush=True)
    print()
    print(
        f"| variant | trigger µs per row ({LOOP_ROWS:,} single-row inserts) | "
        f"bulk insert {bulk_rows:,} s (off ÷ on) | bulk update {bulk_rows:,} s (off ÷ on) |"
    )
    print("| --- | --- | --- | --- |")
    off = {workload: median(times[("off", workload)]) for workload in statements}
    for variant in VARIANTS[1:]:
        on = {workload: median(times[(variant, workload)]) for workload in statements}
        per_row = (on["per row"] - off["per row"]) / LOOP_ROWS * 1e6
        print(
            f"| {variant} | {per_row:.1f} | {on['bulk insert']:.2f} "
            f"({off['bulk insert'] / on['bulk insert']:.2f}) | {on['bulk update']:.2f} "
            f"({off['bulk update'] / on['bulk update']:.2f}) |"
        )
    print(
        f"| off (triggers dropped) | 0 (the insert itself: "
        f"{off['per row'] / LOOP_ROWS * 1e6:.1f}) | {off['bulk insert']:.2f} | "
        f"{off['bulk update']:.2f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
