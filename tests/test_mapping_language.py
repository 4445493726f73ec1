"""The loader mapping language, as a shop's own mapping file uses it.

Each test writes a small mapping and CSV or JSON-lines files, loads them into a real embedded
store, and checks what lands there, or the one error a mistaken mapping gives: it names the
mapping file, the spec and the field, and says what is accepted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from graphfusion.errors import MappingError
from graphfusion.ingest import load
from graphfusion.mapping import load_mapping
from graphfusion.store import EmbeddedStore
from graphfusion.transforms import TRANSFORMS

_HEAD = """\
name: myshop
sources:
  shop: {description: my shop's export}
tables:
  products: {source: shop, file: products.csv, format: csv}
  events: {source: shop, file: events.csv, format: csv}
  extra: {source: shop, file: extra.jsonl, format: jsonl}
"""

_PRODUCTS = """\
sku,name,price,notes,brand,path,prix €,first name
 A1 ,<b>Mug</b> &amp; lid,"$1,299.00",,Acme Inc.,Home > Kitchen > Mugs,3,Ann
B2,Plate,3,a plate,,Home > Kitchen,4,Bob
"""

_EVENTS = """\
user,sku,kind,t
7,a1,view,1600000000
7,b2,BUY,1600000100
8,a1,click,1600000200
"""


def _shop(tmp_path: Path, body: str, head: str = _HEAD, extra: str = "") -> Path:
    """A mapping file (``tmp_path/mine.yaml``) and the shop folder it reads; the mapping."""
    shop = tmp_path / "shop"
    shop.mkdir(exist_ok=True)
    (shop / "products.csv").write_text(_PRODUCTS, encoding="utf-8")
    (shop / "events.csv").write_text(_EVENTS, encoding="utf-8")
    (shop / "extra.jsonl").write_text(extra or '{"sku": "a1"}\n', encoding="utf-8")
    path = tmp_path / "mine.yaml"
    path.write_text(head + body, encoding="utf-8")
    return path


def _error(tmp_path: Path, store: EmbeddedStore, body: str, head: str = _HEAD) -> str:
    """The one error a mistaken mapping gives, without the file's name that starts it;
    nothing is written."""
    path = _shop(tmp_path, body, head)
    with pytest.raises(MappingError) as info:
        load(store, path, {"shop": tmp_path / "shop"})
    assert sum(store.counts().nodes.values()) == 0
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message[len(f"{path}: ") :]


def test_every_documented_feature_lands_in_the_store(tmp_path: Path, store: EmbeddedStore) -> None:
    """One mapping using each part of the language once: what the store holds afterwards."""
    body = """\
nodes:
  - label: Product
    table: products
    key: &sku {column: sku, transform: [strip, lower]}
    properties:
      title: {column: name, transform: strip_html}
      price: {column: price, transform: number}
      description: {columns: [notes, first name]}
      currency: {value: EUR}
  - {label: Brand, table: products, unique: false, where: brand,
     key: {column: brand, transform: slug}, properties: {name: brand}}
  - {label: Category, table: products, unique: false,
     key: {column: path, transform: [split, slug], sep: ">"}}
  - {label: Image, table: products, key: {column: sku, transform: [strip, prefix], prefix: "img-"},
     properties: {path: {template: "{__dir__}/{first name}.png"}}}
  - {label: User, table: events, unique: false, key: {template: "u-{user:>03}"}}
relationships:
  - {type: OF_BRAND, table: products, optional: true,
     from: {label: Product, key: *sku}, to: {label: Brand, key: {column: brand, transform: slug}}}
  - {type: IN_CATEGORY, table: products,
     from: {label: Product, key: *sku},
     to: {label: Category, key: {column: path, transform: [split, slug], sep: ">"}}}
  - {type: VIEWED, table: events, unique: true, where: {column: kind, equals: view},
     from: {label: User, key: {template: "u-{user:>03}"}}, to: {label: Product, key: sku},
     properties: {ts: {column: t, transform: unix_s}, weight: {value: 2.5}}}
  - {type: PURCHASED, table: events, where: {column: kind, transform: lower, equals: buy},
     from: {label: User, key: {template: "u-{user:>03}"}}, to: {label: Product, key: sku},
     properties: {ts: {column: t, transform: unix_s}}}
"""
    report = load(store, _shop(tmp_path, body), {"shop": tmp_path / "shop"})
    assert report.rejected == []
    products = store.query(
        "MATCH (p:Product) RETURN p.id AS id, p.title AS title, p.price AS price, "
        "p.description AS d, p.currency AS c ORDER BY id"
    )
    assert products == [
        {"id": "a1", "title": "Mug & lid", "price": 1299.0, "d": "Ann", "c": "EUR"},
        {"id": "b2", "title": "Plate", "price": 3.0, "d": "a plate", "c": "EUR"},
    ]
    assert store.query("MATCH (b:Brand) RETURN b.id AS id, b.name AS name") == [
        {"id": "acme-inc", "name": "Acme Inc."}
    ]
    links = store.query(
        "MATCH (p:Product)-[:IN_CATEGORY]->(c:Category) RETURN p.id AS pid, c.id AS cid "
        "ORDER BY pid, cid"
    )
    assert [(r["pid"], r["cid"]) for r in links] == [
        ("a1", "home"), ("a1", "kitchen"), ("a1", "mugs"), ("b2", "home"), ("b2", "kitchen"),
    ]  # fmt: skip
    images = store.query("MATCH (i:Image) RETURN i.id AS id, i.path AS path ORDER BY id")
    folder = (tmp_path / "shop").resolve()
    assert images == [
        {"id": "img-A1", "path": f"{folder}/Ann.png"},
        {"id": "img-B2", "path": f"{folder}/Bob.png"},
    ]
    seen = store.query(
        "MATCH (u:User)-[r:VIEWED]->(p:Product) RETURN u.id AS u, p.id AS p, r.ts AS ts, "
        "r.weight AS w"
    )
    assert seen == [{"u": "u-007", "p": "a1", "ts": dt.datetime(2020, 9, 13, 12, 26, 40), "w": 2.5}]
    bought = store.query("MATCH (u:User)-[:PURCHASED]->(p:Product) RETURN u.id AS u, p.id AS p")
    assert bought == [{"u": "u-007", "p": "b2"}]
    users = store.query("MATCH (u:User) RETURN u.id AS id ORDER BY id")
    assert [u["id"] for u in users] == ["u-007", "u-008"]  # the click row makes its user


# ----------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "nodes:\n  - {label: Product, table: products, key: sku, propertes: {title: name}}\n",
            "nodes[0]: unknown keys ['propertes'] (did you mean 'properties'?); accepted: label, "
            "table, key, properties, unique, where",
        ),
        (
            "relationship:\n  - {type: VIEWED}\n",
            "unknown top-level keys ['relationship'] (did you mean 'relationships'?); accepted: "
            "name, description, sources, tables, nodes, relationships",
        ),
        (
            "nodes:\n  - {label: Product, table: products, key: {colum: sku}}\n",
            "nodes[0].key: unknown keys ['colum'] (did you mean 'column'?); accepted: column, "
            "columns, template, value, transform, sep, prefix, regex, index",
        ),
        (
            "relationships:\n  - {type: OF_BRAND, table: products, optinal: true,"
            " from: {label: Product, key: sku}, to: {label: Brand, key: brand}}\n",
            "relationships[0]: unknown keys ['optinal'] (did you mean 'optional'?); accepted: "
            "type, table, from, to, properties, unique, where, optional, skip_dangling",
        ),
        (
            "relationships:\n  - {type: OF_BRAND, table: products,"
            " from: {lable: Product, label: Product, key: sku}, to: {label: Brand, key: brand}}\n",
            "relationships[0].from: unknown keys ['lable'] (did you mean 'label'?); accepted: "
            "label, key",
        ),
    ],
)
def test_an_unknown_key_says_what_is_accepted(
    tmp_path: Path, store: EmbeddedStore, body: str, message: str
) -> None:
    """``unknown keys ['propertes']`` named the typo but not the word meant, nor the others."""
    assert _error(tmp_path, store, body) == message


def test_an_unknown_key_of_a_table_or_a_source_says_what_is_accepted(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """A source's ``{desc: ...}`` was dropped in silence; a table's ``fiel`` named no fix."""
    node = "nodes:\n  - {label: Product, table: t, key: sku}\n"
    table = "sources: {shop: x}\ntables:\n  t: {source: shop, fiel: products.csv, format: csv}\n"
    assert _error(tmp_path, store, node, head=table) == (
        "tables.t: unknown keys ['fiel'] (did you mean 'file'?); accepted: source, file, format, "
        "delimiter"
    )
    source = "sources: {shop: {desc: my shop}}\ntables:\n  t: {source: shop, format: csv}\n"
    assert _error(tmp_path, store, node, head=source) == (
        "sources.shop: unknown keys ['desc'] (did you mean 'description'?); accepted: description"
    )


# ----------------------------------------------------------------------------- field names


@pytest.mark.parametrize(
    ("field", "message"),
    [
        # an empty name read nothing: every row "missing key", or a property never set
        ("''", "a column name must not be empty"),
        ("{column: sku, transform: ''}", "unknown transform ''"),
        ("{column: sku, transform: }", "transform must be a name or a list of names, got None"),
        # YAML reads these as a boolean, a number or null, not as the column's name
        ("no", "got False (quote a column name that YAML reads as a boolean, a number or null)"),
        ("12", "got 12 (quote a column name that YAML reads as a boolean, a number or null)"),
        ("null", "got None (quote a column name that YAML reads as a boolean, a number or null)"),
    ],
)
def test_a_field_that_names_no_column_is_refused(
    tmp_path: Path, store: EmbeddedStore, field: str, message: str
) -> None:
    for place, body in [
        ("nodes[0].key", f"nodes:\n  - {{label: Product, table: products, key: {field}}}\n"),
        (
            "nodes[0].properties.title",
            "nodes:\n  - {label: Product, table: extra, key: sku, "
            f"properties: {{title: {field}}}}}\n",
        ),
    ]:
        got = _error(tmp_path, store, body)
        assert got.startswith(f"{place}: "), got
        assert message in got


# ----------------------------------------------------------------------------- constants


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("{value: null}", "nodes[0].key: a constant key must give a key, got None"),
        ("{value: ''}", "nodes[0].key: a constant key must give a key, got ''"),
        ("{template: ''}", "nodes[0].key: a constant key must give a key, got ''"),
        ("{value: true}", "nodes[0].key: a key must be text or a number, got bool"),
        ("{value: {a: 1}}", "nodes[0].key: a key must be text or a number, got dict"),
        ("{value: [a, [b]]}", "nodes[0].key: a key must be text or a number, got list"),
    ],
)
def test_a_constant_key_that_gives_no_key_is_refused(
    tmp_path: Path, store: EmbeddedStore, key: str, message: str
) -> None:
    """The mapping loaded and every row was rejected, one report line each."""
    body = f"nodes:\n  - {{label: Category, table: products, unique: false, key: {key}}}\n"
    got = _error(tmp_path, store, body)
    assert got.startswith(message), got


def test_a_constant_key_that_gives_a_key_loads(tmp_path: Path, store: EmbeddedStore) -> None:
    body = """\
nodes:
  - {label: Category, table: products, unique: false, key: {value: 5}, properties: {name: name}}
  - {label: Brand, table: products, unique: false, key: {value: [x, y]}}
  - {label: Supplier, table: products, unique: false, key: {template: "s-{{1}}"}}
"""
    report = load(store, _shop(tmp_path, body), {"shop": tmp_path / "shop"})
    assert report.rejected == []
    assert store.query("MATCH (c:Category) RETURN c.id AS id, c.name AS name") == [
        {"id": "5", "name": "<b>Mug</b> &amp; lid"}
    ]
    assert sorted(r["id"] for r in store.query("MATCH (b:Brand) RETURN b.id AS id")) == ["x", "y"]
    assert store.query("MATCH (s:Supplier) RETURN s.id AS id") == [{"id": "s-{1}"}]


@pytest.mark.parametrize("where", ["{value: 0}", "{value: false}", "{template: 'yes'}"])
def test_a_where_that_reads_no_column_is_refused(
    tmp_path: Path, store: EmbeddedStore, where: str
) -> None:
    """It kept every row or none, whatever the data (``{value: 0}`` kept every row)."""
    body = f"nodes:\n  - {{label: Product, table: products, key: sku, where: {where}}}\n"
    assert _error(tmp_path, store, body) == (
        "nodes[0].where: a where must read a column (a column, columns or a template naming "
        "one): a constant keeps every row or none"
    )


# ----------------------------------------------------------------------------- the schema


def test_schema_mistakes_say_what_the_schema_has(tmp_path: Path, store: EmbeddedStore) -> None:
    prop = "nodes:\n  - {label: Brand, table: products, key: sku, properties: {colour: name}}\n"
    assert _error(tmp_path, store, prop) == (
        "nodes[0].properties.colour: Brand has no property 'colour' in the schema; it has: name"
    )
    rel = (
        "relationships:\n  - {type: OF_BRAND, table: products, "
        "from: {label: Brand, key: brand}, to: {label: Product, key: sku}}\n"
    )
    assert _error(tmp_path, store, rel) == (
        "relationships[0]: OF_BRAND does not connect (Brand)->(Product); it connects "
        "(Product)->(Brand)"
    )


def test_an_undeclared_table_or_source_names_the_declared_ones(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    typo = "nodes:\n  - {label: Product, table: product, key: sku}\n"
    assert _error(tmp_path, store, typo) == (
        "nodes[0]: table 'product' is not declared in 'tables' (did you mean 'products'?); "
        "declared: products, events, extra"
    )
    absent = "nodes:\n  - {label: Product, key: sku}\n"
    assert _error(tmp_path, store, absent) == (
        "nodes[0]: 'table' is required; declared: products, events, extra"
    )
    source = "sources: {shop: x}\ntables:\n  t: {source: shops, format: csv}\n"
    assert _error(tmp_path, store, typo, head=source) == (
        "tables.t: source 'shops' is not declared in 'sources' (did you mean 'shop'?); "
        "declared: shop"
    )


# ----------------------------------------------------------------------------- YAML


@pytest.mark.parametrize(
    ("text", "got"),
    [("", "nothing (an empty file)"), ("- a\n- b\n", "a list"), ("hello\n", "a str")],
)
def test_a_file_that_is_not_a_yaml_mapping_says_what_it_holds(
    tmp_path: Path, store: EmbeddedStore, text: str, got: str
) -> None:
    assert _error(tmp_path, store, text, head="") == (
        "a mapping must be a YAML mapping with the keys name, description, sources, tables, "
        f"nodes, relationships; got {got}"
    )


def test_a_table_named_by_a_number_asks_for_quotes(tmp_path: Path, store: EmbeddedStore) -> None:
    head = "sources: {shop: x}\ntables:\n  '2024': {source: shop, format: csv}\n"
    body = "nodes:\n  - {label: Product, table: 2024, key: sku}\n"
    assert _error(tmp_path, store, body, head=head) == (
        "nodes[0]: table 2024 is not declared in 'tables' (quote it: YAML read it as a number); "
        "declared: 2024"
    )


def test_a_yaml_syntax_error_names_the_file_and_the_line(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """The message said ``in "<unicode string>", line 7, column 1`` twice, over three lines."""
    body = "nodes:\n  - {label: Product, table: products, key: sku\n"
    got = _error(tmp_path, store, body)
    assert "<unicode string>" not in got and "\n" not in got
    assert got == (
        "not valid YAML: line 10, column 1: did not find expected ',' or '}' "
        "(while parsing a flow mapping from line 9, column 5)"
    )


def test_a_tab_that_indents_is_named(tmp_path: Path, store: EmbeddedStore) -> None:
    body = "nodes:\n\t- {label: Product, table: products, key: sku}\n"
    got = _error(tmp_path, store, body)
    assert got.startswith("not valid YAML: line 9, column 1: "), got
    assert got.endswith("(YAML indents with spaces; this line starts with a tab)")


# ----------------------------------------------------------------------------- transforms


def test_number_reads_each_element_of_a_list() -> None:
    """A list (a JSON array, or after ``split``) gave the first number in its text:
    ``["$19.99", "$24.99"]`` was 19.99, the ``[`` and the quotes skipped."""
    number = TRANSFORMS["number"]
    assert number(["$19.99", "1,250", None, "n/a"], {}) == [19.99, 1250.0, None, None]
    assert number(("2", 3), {}) == [2.0, 3]
    with pytest.raises(ValueError, match="is not a number: a mapping"):
        number({"amount": "5"}, {})


def test_a_list_of_prices_is_a_rejected_row_not_its_first(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    body = (
        "nodes:\n  - {label: Product, table: extra, key: sku, "
        "properties: {price: {column: price, transform: number}}}\n"
    )
    extra = (
        '{"sku": "a1", "price": ["$19.99", "$24.99"]}\n'
        '{"sku": "a2", "price": {"amount": "5"}}\n'
        '{"sku": "a3", "price": "$7.50"}\n'
    )
    report = load(store, _shop(tmp_path, body, extra=extra), {"shop": tmp_path / "shop"})
    assert [(r.line, r.field) for r in report.rejected] == [(1, "price"), (2, "price")]
    assert "a mapping" in report.rejected[1].reason
    assert store.query("MATCH (p:Product) RETURN p.id AS id, p.price AS price") == [
        {"id": "a3", "price": 7.5}
    ]


def test_the_mapping_format_in_the_module_docstring_parses(tmp_path: Path) -> None:
    """The example at the top of :mod:`graphfusion.mapping` is a valid mapping."""
    import graphfusion.mapping as module

    assert module.__doc__ is not None
    text = module.__doc__.split("::", 1)[1].split("\n\n", 2)[1]
    path = tmp_path / "doc.yaml"
    path.write_text("\n".join(line[4:] for line in text.splitlines()), encoding="utf-8")
    from graphfusion.schema import load_schema

    mapping = load_mapping(path, load_schema())
    assert [n.label for n in mapping.nodes] == ["Product"]


# ----------------------------------------------------------------------------- naming a mapping


def test_a_mapping_given_as_its_text_or_an_object_is_a_clear_error(store: EmbeddedStore) -> None:
    """The text of a mapping given where its path goes raised a bare ``OSError`` (file name
    too long) from ``Path.exists``; other objects were looked up as files by their repr."""
    text = "sources: {shop: x}\nnodes:\n" + "  - {label: Product, table: t, key: id}\n" * 20
    with pytest.raises(MappingError, match="the text of a mapping, not a name or a path"):
        load(store, text, {})
    with pytest.raises(MappingError, match="File name too long"):
        load(store, "mine" * 1000 + ".yaml", {})
    with pytest.raises(MappingError, match="no mapping ''"):
        load(store, "", {})
    with pytest.raises(MappingError, match="a mapping is a built-in name, a file's path, a "):
        load(store, 5, {})  # type: ignore[arg-type]


def test_a_mapping_may_be_given_as_plain_data(tmp_path: Path, store: EmbeddedStore) -> None:
    """What ``yaml.safe_load`` of a mapping file gives is checked and loaded as the file is."""
    _shop(tmp_path, "")
    raw = {
        "sources": {"shop": "my shop"},
        "tables": {"products": {"source": "shop", "file": "products.csv", "format": "csv"}},
        "nodes": [{"label": "Product", "table": "products", "key": "sku"}],
    }
    report = load(store, raw, {"shop": tmp_path / "shop"})
    assert report.nodes == {"Product": 2}
    raw["nodes"][0]["propertes"] = {"title": "name"}
    with pytest.raises(MappingError, match=r"^<memory>: nodes\[0\]: unknown keys \['propertes'\]"):
        load(store, raw, {"shop": tmp_path / "shop"})
