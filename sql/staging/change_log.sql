-- The landing zone of analytics_db: changes copied from finance_db's cdc.change_log, the
-- loader's watermark, and one row per committed batch. Idempotent; the loader applies it.

create schema if not exists staging;

-- One row per source change, exactly once: change_id is the source's, so a batch that
-- were copied twice would fail on the primary key instead of doubling a change.
create table if not exists staging.change_log (
    change_id bigint primary key,
    txid bigint not null,
    changed_at timestamptz not null,
    table_schema text not null,
    table_name text not null,
    operation text not null,
    primary_key jsonb,
    old_row jsonb,
    new_row jsonb,
    load_id bigint not null
);

-- When the change's transaction committed on the source (pg_xact_commit_timestamp), null where
-- the source does not track commit timestamps (track_commit_timestamp off when it committed):
-- the history models date versions by it, else by changed_at.
alter table staging.change_log add column if not exists committed_at timestamptz;

-- The dbt models read one table's changes, and the incremental ones only the newest loads.
create index if not exists change_log_table_load_idx
on staging.change_log (table_schema, table_name, load_id);

-- An incremental build finds every staged change of the keys it re-evaluates by primary_key,
-- and the latest truncate of a table, without reading the table's whole history. A hash
-- index: lookups are by equality only, and a btree on jsonb costs the loader twice as much
-- (measured: COPY of 1.2M changes 6.5 s with no key index, 9.0 s hash, 11.5 s btree).
create index if not exists change_log_key_idx
on staging.change_log using hash (primary_key);

create index if not exists change_log_table_truncate_idx
on staging.change_log (table_schema, table_name, change_id)
where operation = 'TRUNCATE';

-- The changes staged without a commit time: an --as-of moment must come after the last of them
-- committed (exporter/as_of.py). Empty while finance_db tracks commit times.
create index if not exists change_log_untracked_idx
on staging.change_log (change_id)
where committed_at is null;

-- One row per batch, committed in the same transaction as the batch's changes.
create table if not exists staging.load_batches (
    load_id bigint generated always as identity primary key,
    loaded_at timestamptz not null default now(),
    change_count integer not null,
    first_change_id bigint,
    last_change_id bigint,
    horizon_txid bigint not null
);

-- Whether the batch's last change ends its transaction. A build range ends on such a batch,
-- so no build applies half a transaction (a resync's snapshot is one, of many batches).
alter table staging.load_batches
add column if not exists ends_transaction boolean not null default true;

-- The watermark: the (txid, change_id) of the last change landed, and which source server
-- those transaction ids belong to. One row, updated with each batch.
create table if not exists staging.load_state (
    singleton boolean primary key default true check (singleton),
    source_system_identifier text not null,
    last_txid bigint not null,
    last_change_id bigint not null,
    updated_at timestamptz not null default now()
);

-- Changes below this change_id are superseded by a resync's snapshot and are not landed.
alter table staging.load_state add column if not exists change_id_floor bigint not null default 0;

-- The floor the staged changes are decoded from (dbt's staged_changes_of(), and the loader's
-- diagnosis of a value no model can hold): the resync floor, once the floor's own change (the
-- snapshot's first) has landed, so a build between a resync and its snapshot's load still
-- decodes everything it reads. Callers wrap it in a scalar subquery, so it runs once per query.
create or replace function staging.decoded_change_id_floor() returns bigint
language sql
stable
as $$
    select coalesce(
        (
            select load_state.change_id_floor
            from staging.load_state
            where exists (
                select from staging.change_log as landed
                where landed.change_id = load_state.change_id_floor
            )
        ),
        0
    )
$$;

-- The moment the staged changes are complete up to: every change that committed before it
-- has landed (loader/copy_changes.py, complete_through()). On the watermark for the newest load,
-- which a load that lands nothing moves forward too, and on each load's last batch for the
-- builds that applied through it. Null where the source does not track commit times.
alter table staging.load_state add column if not exists complete_through timestamptz;
alter table staging.load_batches add column if not exists complete_through timestamptz;

-- The load fence the warehouse last landed under (finance_db's cdc.load_fence): finance_db
-- holding a lower one has been restored to a moment before that load.
alter table staging.load_state add column if not exists load_fence bigint not null default 0;

-- Each dbt invocation applies one fixed range of loads: the newest load landed when it
-- started (its on-run-start hook, cdc_fix_build_range()). Every model and test of the
-- invocation reads through that load and nothing newer, so a load that lands mid-build is
-- applied by the next build, whole.
create table if not exists staging.build_ranges (
    invocation_id text primary key,
    through_load_id bigint not null,
    started_at timestamptz not null default now()
);

-- The newest load each incremental model has applied, written in the model's own
-- transaction (cdc_record_applied_range()): the next build applies the loads after it, and
-- the model's tests compare it with the staged changes through it.
create table if not exists staging.applied_loads (
    model_name text primary key,
    through_load_id bigint not null,
    applied_at timestamptz not null default now()
);

-- Readers of the reports get this role and nothing else (dbt grants it on reports.*).
do $$
begin
    if not exists (select from pg_roles where rolname = 'acme_reporting') then
        create role acme_reporting nologin;
    end if;
end;
$$;

grant acme_reporting to current_user;
