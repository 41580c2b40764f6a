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

-- Which change log this is. change_ids are unique within one log; a log dropped and
-- installed again starts them afresh, so the loader keeps this id with its watermark and
-- treats a new one like a new server (`acme pipeline resync`).
create table if not exists cdc.log_identity (
    singleton boolean primary key default true check (singleton),
    log_id uuid not null default gen_random_uuid(),
    created_at timestamptz not null default now()
);

alter table cdc.log_identity owner to acme_capture;
insert into cdc.log_identity default values on conflict do nothing;

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
-- Whole rows are written as alias.*, so a column that shares the alias's name cannot stand
-- in for the row.
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
            'select %L, %L, ''INSERT'', %s, to_jsonb(cdc_new.*) from captured_new_rows as cdc_new',
            tg_table_schema, tg_table_name, cdc.key_expression(key_columns, 'cdc_new')
        );
    elsif tg_op = 'DELETE' then
        execute format(
            'insert into cdc.change_log (table_schema, table_name, operation, primary_key, old_row) '
            'select %L, %L, ''DELETE'', %s, to_jsonb(cdc_old.*) from captured_old_rows as cdc_old',
            tg_table_schema, tg_table_name, cdc.key_expression(key_columns, 'cdc_old')
        );
    elsif tg_op = 'UPDATE' then
        -- Old and new images are paired by key; an update that moves a row to another key
        -- is a delete of the old key and an insert of the new one.
        execute format(
            'insert into cdc.change_log '
            '(table_schema, table_name, operation, primary_key, old_row, new_row) '
            'select %L, %L, '
            'case when cdc_new.%I is null then ''DELETE'' '
            'when cdc_old.%I is null then ''INSERT'' else ''UPDATE'' end, '
            'case when cdc_new.%I is null then %s else %s end, '
            'to_jsonb(cdc_old.*), to_jsonb(cdc_new.*) '
            'from captured_old_rows as cdc_old full join captured_new_rows as cdc_new on %s',
            tg_table_schema, tg_table_name, key_columns[1], key_columns[1], key_columns[1],
            cdc.key_expression(key_columns, 'cdc_old'), cdc.key_expression(key_columns, 'cdc_new'),
            (select string_agg(format('cdc_old.%I = cdc_new.%I', col, col), ' and ')
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

-- The primary-key columns of a table, in key order; capture needs a key to identify rows.
create or replace function cdc.key_columns(target regclass) returns text[]
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    key_columns text[];
begin
    select array_agg(a.attname::text order by k.ordinality) into key_columns
    from pg_index as i
    cross join lateral unnest(i.indkey) with ordinality as k (attnum, ordinality)
    inner join pg_attribute as a on i.indrelid = a.attrelid and k.attnum = a.attnum
    where i.indrelid = target and i.indisprimary;

    if key_columns is null then
        raise exception '% has no primary key; capture needs one to identify rows', target
            using errcode = 'invalid_table_definition';
    end if;
    return key_columns;
end;
$$;

-- Writes a snapshot of one captured table: a TRUNCATE change, then one SNAPSHOT change per
-- row, so the warehouse replaces what it knew of the table. The caller holds a lock that
-- keeps writers out until commit (CREATE TRIGGER's, or `acme pipeline resync`'s SHARE lock),
-- so the snapshot is the committed state and every later write gets a higher change_id.
-- Returns the number of rows snapshotted.
create or replace function cdc.snapshot_table(target regclass) returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    table_schema text;
    table_name text;
    key_columns text[];
    snapshotted bigint;
begin
    select n.nspname, c.relname into table_schema, table_name
    from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
    where c.oid = target;

    key_columns := cdc.key_columns(target);

    insert into cdc.change_log (table_schema, table_name, operation)
    values (table_schema, table_name, 'TRUNCATE');
    execute format(
        'insert into cdc.change_log (table_schema, table_name, operation, primary_key, new_row) '
        'select %L, %L, ''SNAPSHOT'', %s, to_jsonb(cdc_row.*) from %s as cdc_row',
        table_schema, table_name, cdc.key_expression(key_columns, 'cdc_row'), target
    );
    get diagnostics snapshotted = row_count;
    return snapshotted;
end;
$$;

-- Starts capturing one table: four triggers, then a snapshot of the rows it holds (the
-- triggers' lock keeps writers out until commit). Run by the table's owner. Returns the
-- number of rows snapshotted, or null when the table was already captured (a no-op).
create or replace function cdc.start_capture(target regclass) returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    key_list text;
begin
    if exists (
        select from pg_trigger
        where tgrelid = target and tgname = 'acme_capture_insert'
    ) then
        return null;
    end if;

    key_list := (
        select string_agg(quote_literal(col), ', ') from unnest(cdc.key_columns(target)) as col
    );

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

    return cdc.snapshot_table(target);
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

-- How far the log has been pruned: the highest (txid, change_id) removed. A warehouse whose
-- watermark is below it (restored from an old backup) has lost changes, and the loader says
-- so instead of loading around the gap.
create table if not exists cdc.prune_state (
    singleton boolean primary key default true check (singleton),
    pruned_through_txid xid8 not null,
    pruned_through_change_id bigint not null,
    pruned_at timestamptz not null default now()
);

alter table cdc.prune_state owner to acme_capture;

-- The loader reads and prunes the log and nothing else.
grant usage on schema cdc to acme_loader;
grant select, delete on cdc.change_log to acme_loader;
grant select, insert, update on cdc.prune_state to acme_loader;
grant select on cdc.log_identity to acme_loader;
grant select on cdc.captured_tables to acme_loader;
