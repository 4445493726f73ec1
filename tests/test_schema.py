"""The schema file: parsing, errors that name the place, generated DDL for both stores."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from graphfusion.errors import SchemaError
from graphfusion.schema import default_schema_path, load_schema, parse_schema
from graphfusion.store.dialect import LADYBUG, NEO4J

DESIGN_LABELS = {
    "User", "Product", "Image", "Review", "Supplier", "Question", "Answer", "Category",
    "Brand", "Batch",
}  # fmt: skip
DESIGN_RELS = {
    ("VIEWED", "User", "Product"),
    ("PURCHASED", "User", "Product"),
    ("FAVORITED", "User", "Product"),
    ("WROTE", "User", "Review"),
    ("ABOUT", "Review", "Product"),
    ("HAS_IMAGE", "Product", "Image"),
    ("SUPPLIES", "Supplier", "Product"),
    ("FROM_BATCH", "Product", "Batch"),
    ("PRODUCED", "Supplier", "Batch"),
    ("IN_CATEGORY", "Product", "Category"),
    ("OF_BRAND", "Product", "Brand"),
    ("ABOUT", "Question", "Product"),
    ("ANSWERS", "Answer", "Question"),
    ("FOLLOWS", "User", "User"),
}


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load(default_schema_path().read_text())


def test_builtin_schema_covers_the_design() -> None:
    schema = load_schema()
    assert set(schema.nodes) >= DESIGN_LABELS
    assert set(schema.rel_pairs()) >= DESIGN_RELS
    for node in schema.nodes.values():
        assert node.key == "id"
        assert node.prop("id").type.name == "string"
    assert schema.node("Product").prop("text_vec").dim == 384
    assert schema.node("Image").prop("image_vec").dim == 1280
    assert schema.node("Product").prop("price").type.name == "float"
    assert schema.node("Review").prop("ts").type.name == "datetime"
    assert schema.node("Supplier").prop("roles").type.name == "list[string]"
    assert schema.node("Supplier").prop("roles").union
    assert schema.rel("NAMES").prop("roles").union
    assert not schema.node("Supplier").prop("name").union
    assert schema.rel("VIEWED").prop("weight").type.name == "float"
    named = {"Product": ["title", "description", "price"], "Review": ["text", "rating"],
             "Question": ["text"], "Answer": ["text"], "Image": ["path"]}  # fmt: skip
    for label, props in named.items():
        for prop in props:
            assert schema.node(label).has_property(prop)


def _broken(raw: dict[str, Any], edit: Any, tmp_path: Path) -> str:
    data = copy.deepcopy(raw)
    edit(data)
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("edit", "place"),
    [
        (lambda d: d["nodes"]["Product"].pop("key"), "nodes.Product"),
        (lambda d: d["nodes"]["Product"]["properties"].update(price="money"),
         "nodes.Product.price"),
        (lambda d: d["nodes"]["Image"]["properties"].update(image_vec={"type": "vector"}),
         "nodes.Image.image_vec"),
        (lambda d: d["nodes"]["Image"]["properties"].update(
            image_vec={"type": "vector", "dim": 0}), "nodes.Image.image_vec"),
        (lambda d: d["relationships"]["VIEWED"].update(between=[["User", "Nope"]]),
         "relationships.VIEWED"),
        (lambda d: d["nodes"].update({"Bad) DETACH DELETE n //": {"key": "id",
                                      "properties": {"id": "string"}}}), "nodes.Bad"),
        (lambda d: d["nodes"]["User"]["properties"].update({"x = 1 //": "string"}), "nodes.User"),
        (lambda d: d["nodes"]["User"].update(key="name", properties={"name": "int"}),
         "nodes.User"),
        (lambda d: d.update(extra=1), "unknown top-level"),
        (lambda d: d["nodes"]["Supplier"]["properties"].update(
            name={"type": "string", "merge": "union"}), "nodes.Supplier.name"),
        (lambda d: d["nodes"]["Supplier"]["properties"].update(
            roles={"type": "list[string]", "merge": "append"}), "nodes.Supplier.roles"),
    ],
)  # fmt: skip
def test_broken_schema_is_rejected_naming_the_place(
    raw: dict[str, Any], edit: Any, place: str, tmp_path: Path
) -> None:
    message = _broken(raw, edit, tmp_path)
    assert place in message
    assert str(tmp_path / "schema.yaml") in message


def test_missing_and_non_yaml_schema_files(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read"):
        load_schema(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed")
    with pytest.raises(SchemaError, match="not valid YAML"):
        load_schema(bad)


def test_unknown_label_and_property_errors() -> None:
    schema = load_schema()
    with pytest.raises(SchemaError, match="unknown node label 'Nope'"):
        schema.node("Nope")
    with pytest.raises(SchemaError, match="unknown relationship type"):
        schema.rel("LIKES")
    with pytest.raises(SchemaError, match="has no property 'colour'"):
        schema.node("Product").prop("colour")


def test_ladybug_ddl() -> None:
    schema = load_schema()
    ddl = LADYBUG.schema_ddl(schema)
    assert ddl[0].startswith("CREATE NODE TABLE IF NOT EXISTS User(id STRING PRIMARY KEY")
    product = LADYBUG.node_table_ddl(schema.node("Product"))
    assert "price DOUBLE" in product
    assert "created_at TIMESTAMP" in product
    assert "text_vec FLOAT[]" in product
    about = LADYBUG.rel_table_ddl(schema.rel("ABOUT"))
    assert about == (
        "CREATE REL TABLE IF NOT EXISTS ABOUT(FROM Review TO Product, "
        "FROM Question TO Product, FROM Recall TO Product)"
    )
    assert len(ddl) == len(schema.nodes) + len(schema.relationships)


def test_neo4j_ddl() -> None:
    schema = load_schema()
    ddl = NEO4J.schema_ddl(schema)
    assert (
        "CREATE CONSTRAINT product_id_unique IF NOT EXISTS FOR (n:Product) REQUIRE n.id IS UNIQUE"
    ) in ddl
    assert (
        "CREATE VECTOR INDEX image_image_vec IF NOT EXISTS FOR (n:Image) ON (n.image_vec) "
        "OPTIONS {indexConfig: {`vector.dimensions`: 1280, "
        "`vector.similarity_function`: 'cosine'}}"
    ) in ddl
    n_vectors = len(list(schema.vector_properties()))
    assert len(ddl) == len(schema.nodes) + n_vectors


def test_parse_schema_rejects_non_mapping() -> None:
    with pytest.raises(SchemaError, match="must be a mapping"):
        parse_schema(["not", "a", "mapping"])
