{#-
    The staged changes of one source table, one row per change: change_id, load_id,
    change_operation, changed_at, primary_key (jsonb) and row_image, the new row as jsonb for
    INSERT, UPDATE and SNAPSHOT and null for DELETE and TRUNCATE. Staging models decode
    row_image into typed columns; keys it holds beyond those are ignored, so a new source
    column breaks nothing. SCHEMA changes are the loader's (loader/schema_contract.py), and
    changes below the resync floor are superseded by the resync's snapshot: neither is read,
    so a value staged before a resync can never stop a build after it.
-#}
{% macro staged_changes_of(table_name, table_schema='operations') %}
    select
        change_id,
        load_id,
        operation as change_operation,
        changed_at,
        primary_key,
        case when operation in ('INSERT', 'UPDATE', 'SNAPSHOT') then new_row end as row_image
    from {{ source('cdc', 'change_log') }}
    where
        table_schema = '{{ table_schema }}'
        and table_name = '{{ table_name }}'
        and operation != 'SCHEMA'
        and change_id >= coalesce(
            (select load_state.change_id_floor from {{ source('cdc', 'load_state') }} as load_state),
            0
        )
{% endmacro %}
