-- Change capture for finance_db: the audit change log and the triggers that fill it.
-- Idempotent: `acme capture install` applies this file, then calls cdc.start_capture() for
-- each table. Invariants (see ARCHITECTURE.md, "Capture invariants"):
--   * the triggers write inside the writing transaction, so an aborted transaction leaves
--     nothing and a committed one leaves every change;
--   * txid is the writer's 64-bit transaction id, which the loader's horizon is built on;
--   * change_id comes from a sequence with cache 1, so for one row a later change always
--     has a higher change_id (row locks serialise the writers, and an uncached sequence
--     hands out numbers in the order they are asked for);
--   * the log belongs to acme_capture: writers reach it only through the SECURITY DEFINER
--     trigger function, whose search_path is pinned.

do $$
begin
    if not exists (select from pg_roles where rolname = 'acme_capture') then
        create role acme_capture nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'acme_loader') then
        create role acme_loader nologin;
    end if;
end;
$$;

-- The installing role acts as the loader (SET ROLE) when it loads.
grant acme_loader to current_user;
-- The loader names the transaction that holds its horizon back, so it sees all sessions.
grant pg_read_all_stats to acme_loader;

create schema if not exists cdc authorization acme_capture;

create table if not exists cdc.change_log (
    change_id bigint generated always as identity (cache 1) primary key,
    txid xid8 not null default pg_current_xact_id(),
    changed_at timestamptz not null default statement_timestamp(),
    table_schema text not null,
    table_name text not null,
    operation text not null
    check (operation in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'SNAPSHOT')),
    primary_key jsonb,
    old_row jsonb,
    new_row jsonb
);

alter table cdc.change_log owner to acme_capture;

-- The loader pages through the log by (txid, change_id).
create index if not exists change_log_txid_change_id_idx on cdc.change_log (txid, change_id);

-- The jsonb key of each row of a transition table, built from the primary-key columns that
-- start_capture() passes as trigger arguments.
create or replace function cdc.key_expression(key_columns text[], row_alias text)
returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
    select 'jsonb_build_object('
        || string_agg(format('%L, %I.%I', col, row_alias, col), ', ')
        || ')'
    from unnest(key_columns) as col
$$;

-- One statement-level trigger function for every table and operation: a multi-row
-- statement writes its changes with one INSERT ... SELECT over the transition tables.
create or replace function cdc.capture_changes() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    -- tg_argv counts from 0; a slice counts from 1 like every other array.
    key_columns text[] := tg_argv[0:tg_nargs - 1];
begin
    if tg_op = 'INSERT' then
        execute format(
            'insert into cdc.change_log (table_schema, table_name, operation, primary_key, new_row) '
            'select %L, %L, ''INSERT'', %s, to_jsonb(n) from captured_new_rows as n',
            tg_table_schema, tg_table_name, cdc.key_expression(key_columns, 'n')
        );
    elsif tg_op = 'DELETE' then
        execute format(
            'insert into cdc.change_log (table_schema, table_name, operation, primary_key, old_row) '
            'select %L, %L, ''DELETE'', %s, to_jsonb(o) from captured_old_rows as o',
            tg_table_schema, tg_table_name, cdc.key_expression(key_columns, 'o')
        );
    elsif tg_op = 'UPDATE' then
        -- Old and new images are paired by key; an update that moves a row to another key
        -- is a delete of the old key and an insert of the new one.
        execute format(
            'insert into cdc.change_log '
            '(table_schema, table_name, operation, primary_key, old_row, new_row) '
            'select %L, %L, '
            'case when n.%I is null then ''DELETE'' when o.%I is null then ''INSERT'' '
            'else ''UPDATE'' end, '
            'case when n.%I is null then %s else %s end, to_jsonb(o), to_jsonb(n) '
            'from captured_old_rows as o full join captured_new_rows as n on %s',
            tg_table_schema, tg_table_name, key_columns[1], key_columns[1], key_columns[1],
            cdc.key_expression(key_columns, 'o'), cdc.key_expression(key_columns, 'n'),
            (select string_agg(format('o.%I = n.%I', col, col), ' and ')
             from unnest(key_columns) as col)
        );
    elsif tg_op = 'TRUNCATE' then
        insert into cdc.change_log (table_schema, table_name, operation)
        values (tg_table_schema, tg_table_name, 'TRUNCATE');
    end if;
    return null;
end;
$$;

alter function cdc.capture_changes() owner to acme_capture;
revoke all on function cdc.capture_changes() from public;

-- Starts capturing one table: four triggers, then a snapshot of the rows it holds. Run by
-- the table's owner inside one transaction: CREATE TRIGGER locks out writers until commit,
-- so the snapshot is exactly the committed state and every later write is captured with
-- a higher change_id. A snapshot replaces what the warehouse knew of the table, so it is
-- written as a TRUNCATE followed by one SNAPSHOT change per row. Returns the number of rows
-- snapshotted, or null when the table was already captured (then it does nothing).
create or replace function cdc.start_capture(target regclass) returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    table_schema text;
    table_name text;
    key_columns text[];
    key_list text;
    snapshotted bigint;
begin
    select n.nspname, c.relname into table_schema, table_name
    from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
    where c.oid = target;

    if exists (
        select from pg_trigger
        where tgrelid = target and tgname = 'acme_capture_insert'
    ) then
        return null;
    end if;

    select array_agg(a.attname::text order by k.ordinality) into key_columns
    from pg_index as i
    cross join lateral unnest(i.indkey) with ordinality as k (attnum, ordinality)
    join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
    where i.indrelid = target and i.indisprimary;

    if key_columns is null then
        raise exception 'table %.% has no primary key; capture needs one to identify rows',
            table_schema, table_name
            using errcode = 'invalid_table_definition';
    end if;

    key_list := (select string_agg(quote_literal(col), ', ') from unnest(key_columns) as col);

    execute format(
        'create trigger acme_capture_insert after insert on %s '
        'referencing new table as captured_new_rows '
        'for each statement execute function cdc.capture_changes(%s)', target, key_list);
    execute format(
        'create trigger acme_capture_update after update on %s '
        'referencing old table as captured_old_rows new table as captured_new_rows '
        'for each statement execute function cdc.capture_changes(%s)', target, key_list);
    execute format(
        'create trigger acme_capture_delete after delete on %s '
        'referencing old table as captured_old_rows '
        'for each statement execute function cdc.capture_changes(%s)', target, key_list);
    execute format(
        'create trigger acme_capture_truncate after truncate on %s '
        'for each statement execute function cdc.capture_changes(%s)', target, key_list);

    insert into cdc.change_log (table_schema, table_name, operation)
    values (table_schema, table_name, 'TRUNCATE');
    execute format(
        'insert into cdc.change_log (table_schema, table_name, operation, primary_key, new_row) '
        'select %L, %L, ''SNAPSHOT'', %s, to_jsonb(s) from %s as s',
        table_schema, table_name, cdc.key_expression(key_columns, 's'), target
    );
    get diagnostics snapshotted = row_count;
    return snapshotted;
end;
$$;

-- Stops capturing one table. The change log keeps what it holds, so the loader can drain it.
create or replace function cdc.stop_capture(target regclass) returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    op text;
    dropped boolean := false;
begin
    foreach op in array array['insert', 'update', 'delete', 'truncate'] loop
        if exists (
            select from pg_trigger
            where tgrelid = target and tgname = 'acme_capture_' || op
        ) then
            execute format('drop trigger acme_capture_%s on %s', op, target);
            dropped := true;
        end if;
    end loop;
    return dropped;
end;
$$;

-- The tables being captured, for `acme capture status` and the loader's checks.
create or replace view cdc.captured_tables as
select
    n.nspname::text as table_schema,
    c.relname::text as table_name
from pg_trigger as t
inner join pg_class as c on t.tgrelid = c.oid
inner join pg_namespace as n on c.relnamespace = n.oid
where t.tgname = 'acme_capture_insert';

alter view cdc.captured_tables owner to acme_capture;

-- The loader reads and prunes the log and nothing else.
grant usage on schema cdc to acme_loader;
grant select, delete on cdc.change_log to acme_loader;
grant select on cdc.captured_tables to acme_loader;
