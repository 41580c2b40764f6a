-- Change capture for finance_db: the audit change log and the triggers that fill it.
-- Idempotent: `acme capture install` applies this file, then calls cdc.start_capture() for
-- each table. Invariants (docs/architecture.md, "Capture"):
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
    check (operation in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'SNAPSHOT', 'SCHEMA')),
    primary_key jsonb,
    old_row jsonb,
    new_row jsonb
);

alter table cdc.change_log owner to acme_capture;

-- Logs installed before schema events existed accept SCHEMA too. NOT VALID: the rows already
-- there passed the narrower check, so the log is not scanned under an exclusive lock.
do $$
begin
    if not exists (
        select from pg_constraint
        where
            conrelid = 'cdc.change_log'::regclass
            and contype = 'c'
            and pg_get_constraintdef(oid) like '%SCHEMA%'
    ) then
        alter table cdc.change_log drop constraint if exists change_log_operation_check;
        alter table cdc.change_log add constraint change_log_operation_check check (
            operation in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'SNAPSHOT', 'SCHEMA')
        ) not valid;
    end if;
end;
$$;

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

-- The loader checks the schema events it is about to land before landing anything; they are
-- rare, so a partial index finds them without reading the backlog.
create index if not exists change_log_schema_events_idx on cdc.change_log (txid, change_id)
where operation = 'SCHEMA';

-- The load fence: the loader writes a new value here, committed, after it has read its
-- snapshot of the log and before the warehouse commits what it read. Any copy of finance_db
-- that holds a fence value therefore holds every change the warehouse landed under it. A
-- restore to an earlier moment (pg_restore of an older dump, point-in-time recovery) brings
-- back an older fence, lower than the one the warehouse recorded, and the loader stops
-- instead of merging a history that was undone.
create table if not exists cdc.load_fence (
    singleton boolean primary key default true check (singleton),
    fence bigint not null,
    fenced_at timestamptz not null default now()
);

alter table cdc.load_fence owner to acme_capture;

-- A row's columns as the catalog holds them now: name -> format_type(), in column order.
create or replace function cdc.table_columns(target regclass) returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(
        jsonb_object_agg(a.attname, format_type(a.atttypid, a.atttypmod) order by a.attnum),
        '{}'::jsonb
    )
    from pg_attribute as a
    where a.attrelid = target and a.attnum > 0 and not a.attisdropped
$$;

-- One SCHEMA change: the table's column list after a DDL statement (or when capture starts),
-- in the change log in commit order with the rows, so the loader sees a column renamed,
-- dropped or retyped at the point in the stream where it happened.
create or replace function cdc.log_schema(target regclass) returns void
language sql security definer
set search_path = pg_catalog, pg_temp
as $$
    insert into cdc.change_log (table_schema, table_name, operation, new_row)
    select n.nspname, c.relname, 'SCHEMA', cdc.table_columns(target)
    from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
    where c.oid = target
$$;

alter function cdc.log_schema(regclass) owner to acme_capture;
revoke all on function cdc.log_schema(regclass) from public;

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

-- The name of a table's own capture function: readable, and unique however long the names.
create or replace function cdc.capture_function_name(target regclass) returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select format(
        'capture_%s_%s',
        left(regexp_replace(lower(n.nspname || '_' || c.relname), '[^a-z0-9_]', '_', 'g'), 40),
        left(md5(n.nspname || '.' || c.relname), 8)
    )
    from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
    where c.oid = target
$$;

-- Writes (or rewrites) one table's capture function: plain static SQL over the statement's
-- transition tables, so PL/pgSQL plans each statement once per session and reuses it. A
-- generic function that built its INSERT with EXECUTE format(...) parsed and planned it on
-- every statement, which was most of capture's cost. SECURITY DEFINER, owned by
-- acme_capture, search_path pinned: writers reach the log only through it. A multi-row
-- statement writes all its changes with one INSERT ... SELECT. Whole rows are written as
-- alias.*, so a column that shares the alias's name cannot stand in for the row. An UPDATE's
-- old and new images are paired by key; one that moves a row to another key is a DELETE of
-- the old key and an INSERT of the new one.
create or replace function cdc.write_capture_function(target regclass) returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    key_columns text[] := cdc.key_columns(target);
    function_name text := cdc.capture_function_name(target);
begin
    -- The table's name is read from tg_table_schema and tg_table_name when the trigger
    -- fires, not written in: a table renamed later is still logged under its own name.
    execute format(
        $body$
        create or replace function cdc.%1$I() returns trigger
        language plpgsql security definer
        set search_path = pg_catalog, pg_temp
        as $capture$
        begin
            if tg_op = 'INSERT' then
                insert into cdc.change_log
                    (table_schema, table_name, operation, primary_key, new_row)
                select tg_table_schema, tg_table_name, 'INSERT', %2$s, to_jsonb(cdc_new.*)
                from captured_new_rows as cdc_new;
            elsif tg_op = 'UPDATE' then
                insert into cdc.change_log
                    (table_schema, table_name, operation, primary_key, old_row, new_row)
                select
                    tg_table_schema, tg_table_name,
                    case
                        when cdc_new.%4$I is null then 'DELETE'
                        when cdc_old.%4$I is null then 'INSERT'
                        else 'UPDATE'
                    end,
                    case when cdc_new.%4$I is null then %3$s else %2$s end,
                    to_jsonb(cdc_old.*), to_jsonb(cdc_new.*)
                from captured_old_rows as cdc_old
                full join captured_new_rows as cdc_new on %5$s;
            elsif tg_op = 'DELETE' then
                insert into cdc.change_log
                    (table_schema, table_name, operation, primary_key, old_row)
                select tg_table_schema, tg_table_name, 'DELETE', %3$s, to_jsonb(cdc_old.*)
                from captured_old_rows as cdc_old;
            else
                insert into cdc.change_log (table_schema, table_name, operation)
                values (tg_table_schema, tg_table_name, 'TRUNCATE');
            end if;
            return null;
        end;
        $capture$
        $body$,
        function_name,
        cdc.key_expression(key_columns, 'cdc_new'),
        cdc.key_expression(key_columns, 'cdc_old'),
        key_columns[1],
        (
            select string_agg(format('cdc_old.%I = cdc_new.%I', col, col), ' and ')
            from unnest(key_columns) as col
        )
    );
    execute format('alter function cdc.%I() owner to acme_capture', function_name);
    execute format('revoke all on function cdc.%I() from public', function_name);
    return function_name;
end;
$$;

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

-- Writes a snapshot of one captured table: its SCHEMA, a TRUNCATE change, then one SNAPSHOT
-- change per row, so the warehouse replaces what it knew of the table. The caller holds a lock that
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

    perform cdc.log_schema(target);
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

-- The tables being captured, for `acme capture status` and the loader's checks: those with
-- any of the four capture triggers (cdc.capture_faults names the ones missing).
create or replace view cdc.captured_tables as
select distinct
    n.nspname::text as table_schema,
    c.relname::text as table_name
from pg_trigger as t
inner join pg_class as c on t.tgrelid = c.oid
inner join pg_namespace as n on c.relnamespace = n.oid
where
    t.tgname in (
        'acme_capture_insert', 'acme_capture_update', 'acme_capture_delete',
        'acme_capture_truncate'
    );

alter view cdc.captured_tables owner to acme_capture;

-- Drops the generic trigger function of older versions once no trigger uses it any more;
-- `acme capture install` calls it after moving the triggers to their tables' own functions.
create or replace function cdc.retire_generic_capture() returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if
        to_regprocedure('cdc.capture_changes()') is not null
        and not exists (
            select from pg_trigger where tgfoid = to_regprocedure('cdc.capture_changes()')
        )
    then
        drop function cdc.capture_changes();
    end if;
end;
$$;

-- Each captured table's columns as they are now, for a loader that cannot see DDL in the
-- stream (loader/schema_contract.py, check_live_schema). Read by oid: no name lookup, so the
-- loader needs no privilege on the captured tables' schemas.
create or replace view cdc.captured_columns as
select
    n.nspname::text as table_schema,
    c.relname::text as table_name,
    cdc.table_columns(c.oid) as column_types
from (
    select distinct tgrelid
    from pg_trigger
    where
        tgname in (
            'acme_capture_insert', 'acme_capture_update', 'acme_capture_delete',
            'acme_capture_truncate'
        )
) as captured
inner join pg_class as c on captured.tgrelid = c.oid
inner join pg_namespace as n on c.relnamespace = n.oid;

alter view cdc.captured_columns owner to acme_capture;

-- Puts one table's four capture triggers in place, as they must be: on its own capture
-- function (written afresh), firing ALWAYS (also for a session with session_replication_role
-- = replica, which would otherwise write past them unseen). A trigger missing, disabled, or
-- still on an older version's function is (re)created; the table's lock keeps writers out
-- until commit, so no change passes between the old trigger and the new. Returns whether the
-- table was captured before (its insert trigger existed).
create or replace function cdc.install_capture_triggers(target regclass) returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    already_captured boolean;
    function_name text;
    capture record;
begin
    already_captured := exists (
        select from pg_trigger
        where tgrelid = target and tgname = 'acme_capture_insert'
    );
    function_name := cdc.write_capture_function(target);
    -- These ALTER TABLEs change no column: the schema event trigger skips them.
    perform set_config('cdc.starting_capture', 'on', true);

    for capture in
        select *
        from (values
            ('insert', 'referencing new table as captured_new_rows'),
            ('update', 'referencing old table as captured_old_rows new table as captured_new_rows'),
            ('delete', 'referencing old table as captured_old_rows'),
            ('truncate', '')
        ) as triggers (op, transition_tables)
    loop
        if not exists (
            select from pg_trigger
            where
                tgrelid = target
                and tgname = 'acme_capture_' || capture.op
                and tgfoid = format('cdc.%I()', function_name)::regprocedure
        ) then
            execute format(
                'create or replace trigger %I after %s on %s %s '
                'for each statement execute function cdc.%I()',
                'acme_capture_' || capture.op, capture.op, target, capture.transition_tables,
                function_name
            );
        end if;
        if not exists (
            select from pg_trigger
            where tgrelid = target and tgname = 'acme_capture_' || capture.op and tgenabled = 'A'
        ) then
            execute format(
                'alter table %s enable always trigger %I', target, 'acme_capture_' || capture.op
            );
        end if;
    end loop;

    perform set_config('cdc.starting_capture', '', true);
    return already_captured;
end;
$$;

-- Starts capturing one table: its triggers, then a snapshot of the rows it holds (the
-- triggers' lock keeps writers out until commit). Run by the table's owner. On a table
-- already captured it only puts the triggers back as they must be. Returns the number of
-- rows snapshotted, or null when the table was already captured.
create or replace function cdc.start_capture(target regclass) returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if cdc.install_capture_triggers(target) then
        -- Its columns as they are now, for the loader to check: a column changed before
        -- this install (by a version that did not record DDL) is caught too.
        perform cdc.log_schema(target);
        return null;
    end if;
    return cdc.snapshot_table(target);
end;
$$;

-- Each captured table's capture triggers that are missing or do not fire ALWAYS. Capture is
-- whole only while this view is empty: `acme capture status` and the loader read it.
create or replace view cdc.capture_faults as
with captured as (
    select distinct tgrelid as relid
    from pg_trigger
    where
        tgname in (
            'acme_capture_insert', 'acme_capture_update', 'acme_capture_delete',
            'acme_capture_truncate'
        )
)

select
    n.nspname::text as table_schema,
    c.relname::text as table_name,
    'acme_capture_' || expected.op as trigger_name,
    case
        when t.oid is null then 'missing'
        when t.tgenabled = 'D' then 'disabled'
        else 'not firing ALWAYS (skipped under session_replication_role)'
    end as fault
from captured
inner join pg_class as c on captured.relid = c.oid
inner join pg_namespace as n on c.relnamespace = n.oid
cross join (values ('insert'), ('update'), ('delete'), ('truncate')) as expected (op)
left join pg_trigger as t
    on captured.relid = t.tgrelid and t.tgname = 'acme_capture_' || expected.op
where t.oid is null or t.tgenabled != 'A';

alter view cdc.capture_faults owner to acme_capture;

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
    execute format('drop function if exists cdc.%I()', cdc.capture_function_name(target));
    return dropped;
end;
$$;


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
grant select on cdc.capture_faults to acme_loader;
grant select on cdc.captured_columns to acme_loader;
grant select, insert, update on cdc.load_fence to acme_loader;

-- DDL on a captured table writes a SCHEMA change (cdc.log_schema). Creating an event trigger
-- takes a superuser; an install by another role captures rows but not schema changes, and
-- `acme capture status` says so. ALWAYS, like the row triggers.
create or replace function cdc.capture_schema_changes() returns event_trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    target oid;
begin
    -- start_capture() enabling its own triggers changes no column.
    if current_setting('cdc.starting_capture', true) = 'on' then
        return;
    end if;
    for target in
        select distinct ddl.objid
        from pg_event_trigger_ddl_commands() as ddl
        where
            ddl.classid = 'pg_class'::regclass
            and exists (
                select from pg_trigger
                where tgrelid = ddl.objid and tgname = 'acme_capture_insert'
            )
    loop
        perform cdc.log_schema(target);
    end loop;
end;
$$;

alter function cdc.capture_schema_changes() owner to acme_capture;
revoke all on function cdc.capture_schema_changes() from public;

do $$
begin
    if
        (select rolsuper from pg_roles where rolname = current_user)
        and not exists (select from pg_event_trigger where evtname = 'acme_capture_schema')
    then
        create event trigger acme_capture_schema on ddl_command_end
        when tag in ('ALTER TABLE')
        execute function cdc.capture_schema_changes();
        alter event trigger acme_capture_schema enable always;
    end if;
end;
$$;
