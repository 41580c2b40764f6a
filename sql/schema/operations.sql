-- The transactional schema of finance_db. Idempotent: safe to apply again.
-- Timestamps are UTC without a time zone, as the seed's order_date is.

create schema if not exists operations;

create table if not exists operations.customers (
    customer_id bigserial primary key,
    customer_name varchar(500) not null,
    is_active boolean not null default true,
    created_at timestamp not null default (now() at time zone 'utc'),
    updated_at timestamp not null default (now() at time zone 'utc')
);

create table if not exists operations.products (
    product_id bigserial primary key,
    product_name varchar(500) not null,
    barcode varchar(64),
    unit_price numeric(12, 2) not null default 0,
    is_active boolean not null default true,
    created_at timestamp not null default (now() at time zone 'utc'),
    updated_at timestamp not null default (now() at time zone 'utc')
);

create table if not exists operations.orders (
    order_id bigserial primary key,
    customer_id bigint not null references operations.customers (customer_id),
    order_date timestamp not null,
    delivery_date timestamp,
    status varchar(50) not null,
    created_at timestamp not null default (now() at time zone 'utc'),
    updated_at timestamp not null default (now() at time zone 'utc')
);

-- Items go with their order: deleting an order deletes its items (and captures those deletes).
create table if not exists operations.order_items (
    order_item_id bigserial primary key,
    order_id bigint not null references operations.orders (order_id) on delete cascade,
    product_id bigint not null references operations.products (product_id),
    quantity integer not null check (quantity >= 0),
    created_at timestamp not null default (now() at time zone 'utc'),
    updated_at timestamp not null default (now() at time zone 'utc')
);

create index if not exists orders_customer_id_idx on operations.orders (customer_id);
create index if not exists order_items_order_id_idx on operations.order_items (order_id);
create index if not exists order_items_product_id_idx on operations.order_items (product_id);

-- updated_at is the source's own record of when a row last changed, so reports can be
-- checked against the source without reading the change log.
create or replace function operations.touch_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := now() at time zone 'utc';
    return new;
end;
$$;

do $$
declare
    t text;
begin
    foreach t in array array['customers', 'products', 'orders', 'order_items'] loop
        execute format(
            'create or replace trigger touch_updated_at before update on operations.%I '
            'for each row execute function operations.touch_updated_at()',
            t
        );
    end loop;
end;
$$;

-- The application role writes operations and nothing else; `acme simulate` acts as it.
do $$
begin
    if not exists (select from pg_roles where rolname = 'acme_app') then
        create role acme_app nologin;
    end if;
end;
$$;

grant acme_app to current_user;
grant usage on schema operations to acme_app;
grant select, insert, update, delete on all tables in schema operations to acme_app;
grant usage on all sequences in schema operations to acme_app;
