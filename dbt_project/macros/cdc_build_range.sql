{#-
    The range of loads one dbt invocation applies (capture invariant "each build applies one
    fixed range of loads"). on-run-start fixes it: the newest load landed when the invocation
    starts that ends a source transaction (a build never applies half of one), or the var
    through_load_id when given. Every incremental model applies the loads after its own
    applied load through it (or through a newer range another invocation applied first, see
    cdc_state_through_sql()), and its post-hook records that in the model's own transaction; its tests read the staged changes through what the model applied. A load that
    lands while the invocation runs is left, whole, to the next one.
-#}

{#- on-run-start: records this invocation's range; old ranges are dropped. A freshness check
    reads no model, and records none. -#}
{% macro cdc_fix_build_range() -%}
    {%- if flags.WHICH == 'freshness' -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set batches = source('cdc', 'load_batches') -%}
    {%- set newest_load = "(select coalesce(max(load_id), 0) from " ~ batches
        ~ " where ends_transaction)" -%}
    {%- set through = var('through_load_id', none) -%}
    delete from {{ source('cdc', 'build_ranges') }}
    where started_at < now() - interval '1 day';
    insert into {{ source('cdc', 'build_ranges') }} (invocation_id, through_load_id)
    values ('{{ invocation_id }}', {{ newest_load if through is none else through | int }})
{%- endmacro %}

{#-
    This invocation's newest load, as a literal (0 when not executing). Commands that run no
    hooks (dbt compile, dbt docs generate) build nothing, and read through the newest load;
    a command that builds or tests without a range (its on-run-start hook failed, and dbt
    goes on after a failed hook) fails here instead of reading a range of its own.
-#}
{% macro cdc_build_through_load_id() -%}
    {%- if not execute -%}
        {{- return(0) -}}
    {%- endif -%}
    {%- set found = run_query(
        "select (select through_load_id from " ~ source('cdc', 'build_ranges')
        ~ " where invocation_id = '" ~ invocation_id ~ "'), (select coalesce(max(load_id), 0)"
        ~ " from " ~ source('cdc', 'load_batches') ~ ")"
    ).rows[0] -%}
    {%- if found[0] is none and flags.WHICH in ['build', 'run', 'test', 'retry'] -%}
        {{- exceptions.raise_compiler_error(
            "this dbt " ~ flags.WHICH ~ " has no range of loads: its on-run-start hook "
            ~ "cdc_fix_build_range() failed (see above)"
        ) -}}
    {%- endif -%}
    {{- return(found[1] if found[0] is none else found[0]) -}}
{%- endmacro %}

{#- The newest load a model has applied, for its incremental build and its tests. -#}
{% macro cdc_applied_load_id_sql(model_relation) -%}
    select coalesce(
        (
            select applied.through_load_id
            from {{ source('cdc', 'applied_loads') }} as applied
            where applied.model_name = '{{ model_relation.identifier }}'
        ),
        (select max(model_rows.last_load_id) from {{ model_relation }} as model_rows),
        0
    )
{%- endmacro %}

{#-
    pre-hook of each incremental model, in the model's transaction: holds the model's lock
    until that transaction commits, so two dbt invocations (acme's cycle and a `dbt build` run
    by hand) never apply changes to one model at once: the second waits, then applies its own
    range to what the first committed. That is safe though its SQL was compiled before the
    wait: each key it re-evaluates is derived from the key's whole staged history (so a load
    the first already applied changes nothing), through the newer of the two ranges
    (cdc_state_through_sql()).
-#}
{% macro cdc_wait_for_model(model_name=none) -%}
    select pg_advisory_xact_lock(
        {{ var('acme')['model_lock_class'] | int }},
        hashtext('{{ this.identifier if model_name is none else model_name }}')
    )
{%- endmacro %}

{#-
    The same lock, taken by an incremental model when it starts to compile: dbt-postgres sends
    no BEGIN, so the model's compile-time queries, its statements and its hooks are one
    transaction, and the lock must come before the first query that names the model. A query
    that reads the model holds a lock on it while it waits, and a `--full-refresh` holding the
    model's lock then waits for that lock to rename the table: a deadlock. Taken first, it also
    means the applied load read at compile time is the one the other invocation committed.
    model_name: another model's lock, for a model that reads that model's rows and needs them
    to stay as read until it commits (agg_pending_items_by_product); its own by default.
-#}
{% macro cdc_wait_for_model_at_compile(model_name=none) -%}
    {%- if execute -%}
        {%- do run_query(cdc_wait_for_model(model_name)) -%}
    {%- endif -%}
{%- endmacro %}

{#-
    The load a model's rows are derived through: this invocation's range, or the newer one
    another invocation already applied to the model (read when the model's SQL runs, after
    cdc_wait_for_model()). An invocation that reaches a model after a newer one built it
    thereby writes state as new as what it replaces, never older.
-#}
{% macro cdc_state_through_sql(through_load_id) -%}
    (
        select greatest({{ through_load_id }}, coalesce(max(applied.through_load_id), 0))
        from {{ source('cdc', 'applied_loads') }} as applied
        where applied.model_name = '{{ this.identifier }}'
    )
{%- endmacro %}

{#-
    post-hook of each incremental model, in the model's transaction: records the range it
    applied, or keeps the newer one another invocation recorded (cdc_state_through_sql()).
-#}
{% macro cdc_record_applied_range() -%}
    insert into {{ source('cdc', 'applied_loads') }} (model_name, through_load_id)
    values ('{{ this.identifier }}', {{ cdc_build_through_load_id() }})
    on conflict (model_name) do update set
        through_load_id = greatest(
            {{ source('cdc', 'applied_loads') }}.through_load_id, excluded.through_load_id
        ),
        applied_at = now()
{%- endmacro %}

{#-
    For a model derived from other incremental models (not from the staged changes): the load
    each of them has applied, as a dict by name (a model that has recorded none is absent).
    Read at compile time, after cdc_wait_for_model_at_compile().
-#}
{% macro cdc_applied_loads_of(model_names) -%}
    {%- set applied = {} -%}
    {%- if execute -%}
        {%- set found = run_query(
            "select model_name, through_load_id from " ~ source('cdc', 'applied_loads')
            ~ " where model_name in ('" ~ model_names | join("', '") ~ "')"
        ) -%}
        {%- for row in found.rows -%}
            {%- do applied.update({row[0]: row[1] | int}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(applied) -}}
{%- endmacro %}

{#-
    A model derived from other incremental models reads their current rows, so they must have
    applied at least the range it is about to record: otherwise the keys changed in the loads
    they have not applied yet would be evaluated against stale rows now and never again (the
    next build starts after this range). Fails the build instead (dbt run --select the
    upstream models first). through_load_id is a literal (0 when not executing: no check).
    Only commands that build check: dbt compile and docs generate build nothing.
-#}
{% macro cdc_require_applied_through(model_names, through_load_id) -%}
    {%- if execute and flags.WHICH in ['build', 'run', 'retry'] -%}
        {%- set applied = cdc_applied_loads_of(model_names) -%}
        {%- for model_name in model_names -%}
            {%- if applied.get(model_name, 0) < through_load_id | int -%}
                {{- exceptions.raise_compiler_error(
                    this.identifier ~ " would apply loads through " ~ through_load_id
                    ~ " but " ~ model_name ~ " has applied only through "
                    ~ applied.get(model_name, 0) ~ ": build " ~ model_name ~ " first"
                ) -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
