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

-- The log is partitioned into segments of change_ids, so `acme capture prune` drops whole
-- segments the warehouse has landed instead of deleting rows (no dead tuples, no vacuum debt;
-- PgQ rotates its event tables for the same reason). Segment n holds change_ids
-- [n * 10^12, (n + 1) * 10^12): wide enough that a segment never fills between two prunes
-- (10^12 changes are 30 years at 1,000 a second), so a write always finds its partition.
-- The segment after the current one is always attached too, empty: prune closes the current
-- segment by moving the change_id sequence into a partition every running statement already
-- sees (a statement fixes the partitions it can write to when it starts).
create or replace function cdc.segment_width() returns bigint
language sql immutable
as $$ select 1000000000000::bigint $$;

-- The segments: the partition holding each, and when prune closed it by moving the sequence
-- past it (every change in a closed segment was written before).
create table if not exists cdc.log_segments (
    segment bigint primary key,
    partition_name text not null,
    attached_at timestamptz not null default clock_timestamp(),
    closed_at timestamptz
);

alter table cdc.log_segments owner to acme_capture;

create or replace function cdc.create_change_log() returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    create table if not exists cdc.change_log (
        change_id bigint generated always as identity (cache 1),
        txid xid8 not null default pg_current_xact_id(),
        changed_at timestamptz not null default statement_timestamp(),
        table_schema text not null,
        table_name text not null,
        operation text not null constraint change_log_operation_check check (
            operation in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'SNAPSHOT', 'SCHEMA')
        ),
        primary_key jsonb,
        old_row jsonb,
        new_row jsonb
    ) partition by range (change_id);
    alter table cdc.change_log owner to acme_capture;
end;
$$;

-- Attaches segment n's partition, empty, unless it is there. A partition is created apart
-- and attached, which locks the log only against other DDL: CREATE TABLE ... PARTITION OF
-- would lock the writers out. SECURITY DEFINER: prune runs as acme_loader.
create or replace function cdc.open_segment(n bigint) returns void
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    partition_name text := 'change_log_s' || n;
begin
    if exists (select from cdc.log_segments where segment = n) then
        return;
    end if;
    if n < cdc.current_segment() then
        raise exception 'segment % is below the current segment %: it would never be written',
            n, cdc.current_segment();
    end if;
    execute format(
        'create table cdc.%I (like cdc.change_log including constraints)', partition_name
    );
    execute format(
        'alter table cdc.change_log attach partition cdc.%I for values from (%s) to (%s)',
        partition_name, n * cdc.segment_width(), (n + 1) * cdc.segment_width()
    );
    insert into cdc.log_segments (segment, partition_name) values (n, partition_name);
end;
$$;

alter function cdc.open_segment(bigint) owner to acme_capture;
revoke all on function cdc.open_segment(bigint) from public;

-- A log installed by a version before segments is a plain table: it becomes the partition
-- below the first segment, in place, under its exclusive lock (writers wait; none fails).
-- `acme capture install` first validates, in transactions of their own that let writers on,
-- a check that its change_ids lie below the first segment and its operation check
-- (loader/capture.py), so attaching it reads none of its rows; a check that is not there or
-- not valid is put right here, at the cost of reading the log under the lock. Every change in
-- it stays where the loader reads it. The loader's former right to delete from it goes.
do $$
declare
    boundary bigint := cdc.segment_width();
begin
    if (select relkind from pg_class where oid = to_regclass('cdc.change_log')) = 'r' then
        lock table cdc.change_log in access exclusive mode;
        alter table cdc.change_log rename to change_log_legacy;
        alter index if exists cdc.change_log_pkey rename to change_log_legacy_pkey;
        alter index if exists cdc.change_log_txid_change_id_idx
        rename to change_log_legacy_txid_change_id_idx;
        alter index if exists cdc.change_log_schema_events_idx
        rename to change_log_legacy_schema_events_idx;
        alter table cdc.change_log_legacy alter column change_id drop identity;
        revoke all on cdc.change_log_legacy from acme_loader;
        perform cdc.create_change_log();
        execute format(
            'alter table cdc.change_log alter column change_id restart with %s', boundary
        );
        if not exists (
            select from pg_constraint as legacy, pg_constraint as parent
            where
                legacy.conrelid = 'cdc.change_log_legacy'::regclass
                and parent.conrelid = 'cdc.change_log'::regclass
                and legacy.conname = 'change_log_operation_check'
                and parent.conname = 'change_log_operation_check'
                and legacy.convalidated
                and pg_get_constraintdef(legacy.oid) = pg_get_constraintdef(parent.oid)
        ) then
            alter table cdc.change_log_legacy drop constraint if exists change_log_operation_check;
            execute (
                select format(
                    'alter table cdc.change_log_legacy add constraint %I %s',
                    conname, pg_get_constraintdef(oid)
                )
                from pg_constraint
                where
                    conrelid = 'cdc.change_log'::regclass
                    and conname = 'change_log_operation_check'
            );
        end if;
        execute format(
            'alter table cdc.change_log attach partition cdc.change_log_legacy '
            'for values from (minvalue) to (%s)',
            boundary
        );
        alter table cdc.change_log_legacy drop constraint if exists change_log_segment_bound;
        insert into cdc.log_segments (segment, partition_name)
        values (boundary / cdc.segment_width() - 1, 'change_log_legacy');
    end if;
end;
$$;

select cdc.create_change_log();

-- The loader pages through the log by (txid, change_id). It is the log's only full index:
-- change_id is unique by its identity sequence, and nothing looks a change up by it alone.
create index if not exists change_log_txid_change_id_idx on cdc.change_log (txid, change_id);

-- The loader checks the schema events it is about to land before landing anything; they are
-- rare, so a partial index finds them without reading the backlog.
create index if not exists change_log_schema_events_idx on cdc.change_log (txid, change_id)
where operation = 'SCHEMA';

-- The change_id the next change will get (the sequence is not advanced). SECURITY DEFINER:
-- the loader reads it, and has no right on the sequence.
create or replace function cdc.next_change_id() returns bigint
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    next_change_id bigint;
begin
    execute format(
        'select case when is_called then last_value + 1 else last_value end from %s',
        pg_get_serial_sequence('cdc.change_log', 'change_id')
    ) into next_change_id;
    return next_change_id;
end;
$$;

alter function cdc.next_change_id() owner to acme_capture;

-- The segment writes go to now.
create or replace function cdc.current_segment() returns bigint
language sql stable
set search_path = pg_catalog, pg_temp
as $$ select cdc.next_change_id() / cdc.segment_width() $$;

-- The segment writes go to, and the one after it (a new log's first two, an upgraded log's
-- next two; after a restore of a dump taken while prune moved the sequence, the one it moved
-- into).
select cdc.open_segment(cdc.current_segment());
select cdc.open_segment(cdc.current_segment() + 1);

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

-- Marks closed every segment below the one writes go to now.
create or replace function cdc.close_passed_segments() returns void
language sql security definer
set search_path = pg_catalog, pg_temp
as $$
    update cdc.log_segments set closed_at = clock_timestamp()
    where segment < cdc.current_segment() and closed_at is null
$$;

alter function cdc.close_passed_segments() owner to acme_capture;
revoke all on function cdc.close_passed_segments() from public;

-- Makes next_change_id the next change_id handed out, unless the sequence is past it already
-- (it never moves back), and returns the next change_id. Its segment's partition must be
-- attached, committed, and seen by every statement still running (the caller waits them
-- out): setval is not undone by a rollback, and a write whose change_id has no partition
-- fails. The caller keeps writers from passing next_change_id meanwhile (it is in a segment
-- no writer has reached, or the captured tables are locked).
create or replace function cdc.advance_change_ids(next_change_id bigint) returns bigint
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    sequence_name text := pg_get_serial_sequence('cdc.change_log', 'change_id');
begin
    -- One at a time: two callers could otherwise each read the sequence before the other
    -- moved it, and the second move it back.
    lock table cdc.log_segments in share row exclusive mode;
    if next_change_id > cdc.next_change_id() then
        if not exists (
            select from cdc.log_segments where segment = next_change_id / cdc.segment_width()
        ) then
            raise exception 'change_id % is in no attached segment: a write would fail',
                next_change_id;
        end if;
        perform setval(sequence_name, next_change_id, false);
    end if;
    perform cdc.close_passed_segments();
    return cdc.next_change_id();
end;
$$;

alter function cdc.advance_change_ids(bigint) owner to acme_capture;
revoke all on function cdc.advance_change_ids(bigint) from public;

-- Waits until no transaction that has written to the log is still open, and keeps new ones
-- out until the caller's transaction ends: the caller (prune, with a short lock_timeout) then
-- moves the sequence into a partition every statement that runs afterwards sees.
create or replace function cdc.wait_for_log_writers() returns void
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    lock table only cdc.change_log in share mode;
end;
$$;

alter function cdc.wait_for_log_writers() owner to acme_capture;
revoke all on function cdc.wait_for_log_writers() from public;

-- Whether the current segment is due to close: its first change (in the loader's order) is
-- older than the retention. Closed, it can be dropped once landed and closed longer ago than
-- the retention, so a log keeps between one and two retention periods of changes.
create or replace function cdc.segment_due_to_close(retention interval) returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    current_partition text;
    first_change_at timestamptz;
begin
    select partition_name into current_partition
    from cdc.log_segments
    where segment = cdc.current_segment();
    if current_partition is null then
        return false;
    end if;
    execute format(
        'select changed_at from cdc.%I order by txid, change_id limit 1', current_partition
    ) into first_change_at;
    return first_change_at < now() - retention;
end;
$$;

alter function cdc.segment_due_to_close(interval) owner to acme_capture;
revoke all on function cdc.segment_due_to_close(interval) from public;

-- Drops, oldest first, the closed segments closed longer ago than the retention whose every
-- change is at or below the warehouse's watermark, and records in cdc.prune_state how far the
-- log was pruned. Dropping a partition takes the log's exclusive lock, which waits for every
-- writer still in its transaction (the caller sets a short lock_timeout and tries again, so
-- no writer waits long); no change can enter a closed segment after that, so the check taken
-- under the lock is final. Nothing here reads a segment's rows: the checks are index probes,
-- and a drop costs what unlinking the segment's files does. Returns each dropped segment with
-- its last change in the loader's order.
create or replace function cdc.drop_landed_segments(
    through_txid xid8, through_change_id bigint, retention interval
) returns table (segment bigint, last_txid xid8, last_change_id bigint)
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    candidate record;
    landed_check text;
    locked boolean := false;
    landed boolean;
    pruned_txid xid8;
    pruned_change_id bigint;
begin
    -- The check under the lock must see what committed while the lock was awaited.
    if current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'cdc.drop_landed_segments() must run in READ COMMITTED, not %',
            current_setting('transaction_isolation');
    end if;
    perform cdc.close_passed_segments();
    for candidate in
        select log_segments.segment, log_segments.partition_name
        from cdc.log_segments
        where log_segments.closed_at < now() - retention
        order by log_segments.segment
    loop
        landed_check := format(
            'select not exists (select from cdc.%I where (txid, change_id) > ($1, $2))',
            candidate.partition_name
        );
        execute landed_check into landed using through_txid, through_change_id;
        exit when not landed;
        if not locked then
            -- The segment first, waiting long enough for autovacuum to be cancelled (it
            -- yields after deadlock_timeout); it blocks no writer, as writes go to the
            -- current segment. Then the log itself, ONLY: its other partitions need no
            -- lock, and the parent's keeps every writer and reader out. The check again,
            -- now final.
            perform set_config('lock_timeout', '5s', true);
            execute format('lock table cdc.%I in access exclusive mode', candidate.partition_name);
            perform set_config('lock_timeout', '200ms', true);
            lock table only cdc.change_log in access exclusive mode;
            locked := true;
            execute landed_check into landed using through_txid, through_change_id;
            exit when not landed;
        else
            -- Writers are waiting on the log's lock: no wait for another segment's.
            begin
                execute format(
                    'lock table cdc.%I in access exclusive mode nowait', candidate.partition_name
                );
            exception when lock_not_available then
                exit;
            end;
        end if;
        execute format(
            'select txid, change_id from cdc.%I order by txid desc, change_id desc limit 1',
            candidate.partition_name
        ) into last_txid, last_change_id;
        if last_txid is not null and (
            pruned_txid is null or (last_txid, last_change_id) > (pruned_txid, pruned_change_id)
        ) then
            pruned_txid := last_txid;
            pruned_change_id := last_change_id;
        end if;
        execute format('drop table cdc.%I', candidate.partition_name);
        delete from cdc.log_segments where log_segments.segment = candidate.segment;
        segment := candidate.segment;
        return next;
    end loop;

    if pruned_txid is not null then
        insert into cdc.prune_state as s (pruned_through_txid, pruned_through_change_id)
        values (pruned_txid, pruned_change_id)
        on conflict (singleton) do update set
            pruned_through_txid = excluded.pruned_through_txid,
            pruned_through_change_id = excluded.pruned_through_change_id,
            pruned_at = now()
        where (excluded.pruned_through_txid, excluded.pruned_through_change_id)
            > (s.pruned_through_txid, s.pruned_through_change_id);
    end if;
end;
$$;

alter function cdc.drop_landed_segments(xid8, bigint, interval) owner to acme_capture;
revoke all on function cdc.drop_landed_segments(xid8, bigint, interval) from public;

-- The loader reads the log, and prunes it through the segment functions, and nothing else.
grant usage on schema cdc to acme_loader;
grant select on cdc.change_log to acme_loader;
revoke delete on cdc.change_log from acme_loader;
grant select on cdc.log_segments, cdc.prune_state to acme_loader;
revoke insert, update on cdc.prune_state from acme_loader;
grant execute on function
cdc.drop_landed_segments(xid8, bigint, interval),
cdc.segment_due_to_close(interval),
cdc.wait_for_log_writers(),
cdc.advance_change_ids(bigint),
cdc.open_segment(bigint)
to acme_loader;
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
