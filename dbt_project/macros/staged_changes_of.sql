{#-
    The staged changes of one source table, one row per change: change_id, txid, load_id,
    change_operation, changed_at, committed_at, primary_key (jsonb) and row_image, the new row as jsonb for
    INSERT, UPDATE and SNAPSHOT and null for DELETE and TRUNCATE. Staging models decode
    row_image into typed columns; keys it holds beyond those are ignored, so a new source
    column breaks nothing. SCHEMA changes are the loader's (loader/schema_contract.py) and are
    left out. Below the resync floor a change keeps its key and operation, so the resync's
    TRUNCATE still removes what it stood for, but not its row image: the snapshot supersedes
    it, and a value staged before a resync that no model type can hold is never decoded. The
    floor counts from when its first change (the snapshot's) has landed, so a build between
    the resync and the snapshot's load still decodes everything it reads.
-#}
{% macro staged_changes_of(table_name, table_schema='operations') %}
    select
        change_id,
        txid,
        load_id,
        operation as change_operation,
        changed_at,
        committed_at,
        primary_key,
        case
            when
                operation in ('INSERT', 'UPDATE', 'SNAPSHOT')
                and change_id >= (
                    select {{ source('cdc', 'load_state').schema }}.decoded_change_id_floor()
                )
                then new_row
        end as row_image
    from {{ source('cdc', 'change_log') }}
    where
        table_schema = '{{ table_schema }}'
        and table_name = '{{ table_name }}'
        and operation != 'SCHEMA'
{% endmacro %}
