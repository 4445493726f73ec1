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
        (lambda d: d["nodes"]["Product"]["properties"].update(
            price={"type": "float", "min": 10, "max": 1}), "nodes.Product.price"),
        (lambda d: d["relationships"]["RATED"]["properties"].update(
            rating={"type": "float", "min": "one"}), "relationships.RATED.rating"),
    ],
)  # fmt: skip
def test_broken_schema_is_rejected_naming_the_place(
    raw: dict[str, Any], edit: Any, place: str, tmp_path: Path
) -> None:
    message = _broken(raw, edit, tmp_path)
    assert place in message
    assert str(tmp_path / "schema.yaml") in message


def test_builtin_schema_declares_value_ranges() -> None:
    schema = load_schema()

    def bounds(prop: Any) -> tuple[Any, Any]:
        return prop.minimum, prop.maximum

    assert bounds(schema.node("Product").prop("price")) == (0, None)
    assert bounds(schema.node("User").prop("age")) == (0, 150)
    assert bounds(schema.node("Review").prop("rating")) == (1, 5)
    assert bounds(schema.node("Review").prop("helpful")) == (0, None)
    assert bounds(schema.rel("RATED").prop("rating")) == (1, 5)
    for rtype in ("VIEWED", "PURCHASED", "FAVORITED", "RATED"):  # views, a rating: not below 0
        assert bounds(schema.rel(rtype).prop("weight")) == (0, 1_000_000_000)  # finite as float32
    # where no data set says what is sensible, there is no range
    assert bounds(schema.node("Batch").prop("units")) == (None, None)


def _with_properties(props: dict[str, Any]) -> dict[str, Any]:
    return {"nodes": {"Thing": {"key": "id", "properties": {"id": "string", **props}}}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "float", "min": 0}, (0, None)),
        ({"type": "float", "max": 2.5}, (None, 2.5)),
        ({"type": "float", "min": -1.5, "max": 7}, (-1.5, 7)),
        ({"type": "int", "min": 3, "max": 3}, (3, 3)),
        ({"type": "int", "min": -(2**63), "max": 2**63 - 1}, (-(2**63), 2**63 - 1)),
        ({"type": "int", "description": "no range"}, (None, None)),
        ("int", (None, None)),
    ],
)
def test_numeric_properties_take_min_and_max(spec: Any, expected: tuple[Any, Any]) -> None:
    prop = parse_schema(_with_properties({"n": spec})).node("Thing").prop("n")
    assert (prop.minimum, prop.maximum) == expected
    assert prop.type.name == (spec if isinstance(spec, str) else spec["type"])


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"type": "float", "min": 5, "max": 1}, "'min' (5) is greater than 'max' (1)"),
        ({"type": "float", "min": "0"}, "'min' must be a number, got '0'"),
        ({"type": "float", "max": None}, "'max' must be a number, got None"),
        ({"type": "int", "min": True}, "'min' must be a number, got True"),
        ({"type": "float", "max": [5]}, "'max' must be a number, got [5]"),
        ({"type": "float", "max": float("inf")}, "'max' must be a finite number, got inf"),
        ({"type": "float", "min": float("nan")}, "'min' must be a finite number, got nan"),
        ({"type": "int", "min": 0.5}, "'min' of an int property must be a 64-bit integer"),
        ({"type": "int", "max": 2**63}, "'max' of an int property must be a 64-bit integer"),
        ({"type": "string", "min": 0}, "apply to int and float properties only, not to string"),
        ({"type": "bool", "max": 1}, "apply to int and float properties only, not to bool"),
        ({"type": "datetime", "min": 0}, "only, not to datetime"),
        ({"type": "list[float]", "min": 0}, "only, not to list[float]"),
        ({"type": "vector", "dim": 3, "max": 1}, "only, not to vector"),
    ],
)
def test_bad_ranges_are_schema_errors(spec: Any, reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_schema(_with_properties({"n": spec}), source="s.yaml")
    assert str(info.value).startswith("s.yaml: nodes.Thing.n: ")
    assert reason in str(info.value)


def test_a_range_on_a_relationship_property() -> None:
    raw = _with_properties({})
    raw["relationships"] = {
        "LIKES": {"between": [["Thing", "Thing"]],
                  "properties": {"weight": {"type": "float", "min": 0, "max": 1}}}
    }  # fmt: skip
    prop = parse_schema(raw).rel("LIKES").prop("weight")
    assert (prop.minimum, prop.maximum) == (0, 1)
    raw["relationships"]["LIKES"]["properties"]["weight"]["type"] = "string"
    with pytest.raises(SchemaError, match=r"relationships\.LIKES\.weight: 'min' and 'max'"):
        parse_schema(raw)


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


@pytest.mark.parametrize(
    ("raw", "place"),
    [
        # "Order" is a word of Cypher: LadybugDB's parser refused the store's DDL
        ({"nodes": {"Order": {"key": "id", "properties": {"id": "string"}}}}, "nodes.Order"),
        (_with_properties({"end": "datetime"}), "nodes.Thing.end"),
        ({"nodes": {"Thing": {"key": "union", "properties": {"union": "string"}}}},
         "nodes.Thing.union"),
        ({**_with_properties({}), "relationships": {"IN": {"between": [["Thing", "Thing"]]}}},
         "relationships.IN"),
    ],
)  # fmt: skip
def test_cypher_words_are_refused_as_names(raw: dict[str, Any], place: str) -> None:
    with pytest.raises(SchemaError, match="a word of Cypher") as info:
        parse_schema(raw, source="s.yaml")
    assert place in str(info.value)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        # LadybugDB's names ignore case: BRAND would have been Brand's table, written as one
        ({"nodes": {"Brand": {"key": "id", "properties": {"id": "string"}},
                    "BRAND": {"key": "id", "properties": {"id": "string"}}}}, "Brand, BRAND"),
        ({**_with_properties({}), "relationships": {"thing": {"between": [["Thing", "Thing"]]}}},
         "Thing, thing"),
        (_with_properties({"Title": "string", "title": "string"}), "Title, title"),
    ],
)  # fmt: skip
def test_names_that_differ_only_in_case_are_refused(raw: dict[str, Any], match: str) -> None:
    with pytest.raises(SchemaError, match=f"differ only in case: {match}"):
        parse_schema(raw, source="s.yaml")


def test_a_key_given_twice_in_a_schema_file_is_refused(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys in silence: a property declared twice (its first
    type lost) is an error naming both lines, as in a loader mapping."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "nodes:\n  Thing:\n    key: id\n    properties:\n      id: string\n"
        "      size: int\n      size: string\n"
    )
    with pytest.raises(SchemaError, match=r"key 'size' given twice \(line 7, first on line 6\)"):
        load_schema(path)


def _with_relationship(props: dict[str, Any]) -> dict[str, Any]:
    return {**_with_properties({}), "relationships": {"LINKS": {
        "between": [["Thing", "Thing"]], "properties": props}}}  # fmt: skip


@pytest.mark.parametrize("name", ["src", "dst", "from", "to", "From", "SRC"])
def test_relationship_properties_named_like_the_stores_end_columns_are_refused(
    name: str,
) -> None:
    """The embedded store writes a relationship's ends as the columns src and dst, and its
    bulk copy reads from and to as the ends: a property of one of these names loaded the
    start key as its value (from), crashed the load (to, dst) or rejected every row (src)."""
    with pytest.raises(SchemaError, match="the store's own name for a relationship's end") as info:
        parse_schema(_with_relationship({name: "float"}), source="s.yaml")
    assert f"relationships.LINKS.{name}" in str(info.value)


def test_node_properties_may_be_named_like_relationship_ends() -> None:
    schema = parse_schema(_with_properties({"from": "string", "to": "string", "src": "string"}))
    assert schema.node("Thing").has_property("from")


@pytest.mark.parametrize(
    ("text", "read_as", "place"),
    [
        # YAML 1.1 reads these unquoted words as booleans, null and numbers
        ("nodes:\n  Thing:\n    key: id\n    properties: {id: string, yes: bool}\n", "True",
         "nodes.Thing"),
        ("nodes:\n  Thing:\n    key: id\n    properties: {id: string, null: string}\n", "None",
         "nodes.Thing"),
        ("nodes:\n  On: {key: id, properties: {id: string}}\n", "True", "nodes"),
        ("nodes:\n  Thing: {key: id, properties: {id: string}}\n"
         "relationships:\n  No: {between: [[Thing, Thing]]}\n", "False", "relationships"),
        ("nodes:\n  Thing: {key: id, properties: {id: string, 0x10: int}}\n", "16",
         "nodes.Thing"),
    ],
)  # fmt: skip
def test_names_yaml_reads_as_other_values_are_refused_with_a_hint(
    tmp_path: Path, text: str, read_as: str, place: str
) -> None:
    """`yes: bool` was refused as "property 'True' is a word of Cypher", naming a word the
    file does not hold."""
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError, match="quote it") as info:
        load_schema(path)
    message = str(info.value)
    assert f"{path}: {place}" in message
    assert f"YAML read as {read_as}" in message


@pytest.mark.parametrize(
    "between", [[["Thing", ["Thing"]]], [[{"Thing": 1}, "Thing"]], [["Thing", None]]]
)
def test_between_ends_that_are_not_names_are_schema_errors(between: Any) -> None:
    raw = {**_with_properties({}), "relationships": {"LINKS": {"between": between}}}
    with pytest.raises(SchemaError, match=r"relationships\.LINKS: end label"):
        parse_schema(raw, source="s.yaml")


@pytest.mark.parametrize(
    "raw",
    [
        {"nodes": {"Thing\n": {"key": "id", "properties": {"id": "string"}}}},
        _with_properties({"size\n": "int"}),
        {**_with_properties({}), "relationships": {"LINKS\n": {"between": [["Thing", "Thing"]]}}},
    ],
)
def test_a_name_ending_in_a_newline_is_not_an_identifier(raw: dict[str, Any]) -> None:
    """The identifier rule is the gate for names that reach Cypher: ``$`` let a trailing
    newline through."""
    with pytest.raises(SchemaError, match="is not a valid identifier"):
        parse_schema(raw)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        # `from` is read by the text and image encoders only: elsewhere it was ignored
        ({"type": "vector", "dim": 4, "encoder": "behaviour", "from": ["name"]},
         "'from' applies to text and image vectors only"),
        ({"type": "vector", "dim": 4, "from": ["name"]},
         "'from' applies to text and image vectors only"),
        ({"type": "vector", "dim": 4, "encoder": "text", "from": {"name": 1}},
         "'from' must be a property name or a list of them"),
        ({"type": {"type": "int"}}, "a property type must be a name"),
    ],
)  # fmt: skip
def test_vector_settings_that_would_be_ignored_are_refused(spec: Any, match: str) -> None:
    raw = _with_properties({"name": "string", "v": spec})
    with pytest.raises(SchemaError, match=match):
        parse_schema(raw, source="s.yaml")


@pytest.mark.parametrize("version", [True, "1", 1.0])
def test_version_must_be_an_integer(version: Any) -> None:
    with pytest.raises(SchemaError, match="'version' must be an integer"):
        parse_schema({**_with_properties({}), "version": version})


def test_require_names_missing_labels_types_and_properties() -> None:
    schema = parse_schema(_with_properties({"title": "string"}), source="s.yaml")
    schema.require("listing", ["Thing"], properties=["Thing.title", "Thing.id"])
    with pytest.raises(SchemaError) as info:
        schema.require(
            "recommendation",
            ["Thing", "User"],
            ["PURCHASED"],
            properties=["Thing.fused_vec", "Thing.title", "User.fused_vec"],
        )
    message = str(info.value)
    assert "recommendation needs what the schema 'graph' (s.yaml) lacks" in message
    # a property of a missing label is not named twice: the label is
    assert "User, PURCHASED, Thing.fused_vec" in message
    assert "User.fused_vec" not in message


@pytest.mark.parametrize("bad", ["fused_vec", "Thing.", ".x", "Thing.fused_vec.x"])
def test_require_refuses_a_property_not_named_label_dot_property(bad: str) -> None:
    schema = parse_schema(_with_properties({}))
    with pytest.raises(ValueError, match=r"Label\.property"):
        schema.require("x", properties=[bad])
