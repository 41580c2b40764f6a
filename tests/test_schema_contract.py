"""The schema contract without servers: the staging models cast to the types staging.yml
declares, and which source type changes a declared type holds without loss."""

from __future__ import annotations

import re

import pytest

from loader.schema_contract import (
    STAGING_YML,
    SchemaEvent,
    holds_without_loss,
    mismatch,
    modelled_tables,
    normalise,
)

CAST = re.compile(r"\((?:row_image|primary_key) ->> '(\w+)'\)::([a-z ]+(?:\([\d, ]+\))?) as (\w+)")


def test_every_staging_model_casts_to_the_declared_types():
    tables = modelled_tables()
    assert set(tables) == {
        "operations.customers",
        "operations.products",
        "operations.orders",
        "operations.order_items",
    }
    for modelled in tables.values():
        sql = (STAGING_YML.parent / f"{modelled.model}.sql").read_text()
        casts = {name: normalise(kind) for source, kind, name in CAST.findall(sql)}
        assert casts == {name: normalise(kind) for name, kind in modelled.columns.items()}, (
            modelled.model
        )


@pytest.mark.parametrize(
    ("source", "model"),
    [
        ("numeric(12,2)", "numeric(12,2)"),
        ("numeric(10,2)", "numeric(12,2)"),
        ("numeric(12,2)", "numeric(14,4)"),
        ("numeric(12,2)", "numeric"),
        ("integer", "bigint"),
        ("smallint", "integer"),
        ("integer", "numeric(12,2)"),
        ("character varying(40)", "character varying(50)"),
        ("character varying(500)", "text"),
        ("timestamp(3) without time zone", "timestamp without time zone"),
    ],
)
def test_changes_the_model_holds(source, model):
    assert holds_without_loss(source, model)


@pytest.mark.parametrize(
    ("source", "model"),
    [
        ("numeric(14,4)", "numeric(12,2)"),
        ("numeric(13,2)", "numeric(12,2)"),
        ("numeric", "numeric(12,2)"),
        ("bigint", "integer"),
        ("bigint", "numeric(12,2)"),
        ("text", "character varying(500)"),
        ("character varying(600)", "character varying(500)"),
        ("character varying", "character varying(500)"),
        ("timestamp with time zone", "timestamp without time zone"),
        ("double precision", "numeric(12,2)"),
        ("integer", "boolean"),
    ],
)
def test_changes_the_model_cannot_hold(source, model):
    assert not holds_without_loss(source, model)


def test_a_mismatch_names_the_table_column_and_both_types():
    declared = modelled_tables()["operations.products"].columns
    fits = SchemaEvent(9, "operations.products", {**declared, "note": "text"})
    assert mismatch(fits) is None
    retyped = SchemaEvent(9, "operations.products", {**declared, "unit_price": "numeric(14,4)"})
    assert mismatch(retyped) == (
        "operations.products changed at change 9: column unit_price is now numeric(14,4), "
        "which the model's numeric(12,2) cannot hold without loss. "
        "stg_operations__products reads it"
    )
    renamed = {k: v for k, v in declared.items() if k != "product_name"}
    renamed["name"] = "character varying(500)"
    assert "column product_name character varying(500) is gone (new column: name" in mismatch(
        SchemaEvent(9, "operations.products", renamed)
    )
    assert mismatch(SchemaEvent(9, "operations.tags", {"n": "text"})) is None
