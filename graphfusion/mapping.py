"""Loader mappings: declarative files that map source columns to schema nodes and relationships.

A mapping (YAML) names its sources, the tables read from them, and how each table's rows
become nodes and relationships::

    name: synthetic
    sources:
      shop: {description: folder written by `graphfusion generate`}
    tables:
      products: {source: shop, file: products.csv, format: csv}
    nodes:
      - label: Product
        table: products
        key: id                                   # a column ...
        properties:
          title: title
          price: {column: price, transform: number}  # ... or a column with transforms
    relationships:
      - type: IN_CATEGORY
        table: products
        from: {label: Product, key: id}
        to: {label: Category, key: category_id}

A field is a column name, or a mapping with one of ``column``, ``columns`` (first non-empty),
``template`` (``"{a}:{b}"``) or ``value`` (a constant), and optional ``transform`` (a name or a
list of names from :data:`TRANSFORMS`) with their options (``sep``, ``prefix``). A key that
yields a list (``transform: split``) makes one node or relationship per element.
A spec's ``where`` field keeps only the rows where it is non-empty (or, with ``equals``, where
its text, stripped of spaces at its ends, is that value; case counts). When every spec reading
a table has a ``where``, each row that none of them keeps is reported (``type 'CLICKED' matches
none of 'VIEWED', 'PURCHASED'``). The pseudo-column ``__dir__`` is the folder of the table's
file, for paths relative to it. Node specs are ``unique`` by default (a repeated key in the
same table is reported); ``unique: false`` merges repeats (for entities named in many rows,
such as the users of a review file). Relationship specs merge repeated pairs unless ``unique:
true``, and report a row with an empty end key unless ``optional: true`` (a product without a
brand). A row that any spec reading its table reports makes nothing in the others either (it
is reported once, with each spec's reason): make a link ``optional``, or give a spec a
``where``, for what a row may lack. A merge (of repeats, or of the specs that name the same
node or pair) keeps each property's first non-null value, and adds up the lists of a schema
property with ``merge: union``. A link to a node that exists neither in the load nor in the
store is reported (on its own: the rest of its row loads), or, with ``skip_dangling: true``
(links to products outside a dataset, such as Amazon's also_buy), only counted in the
report's ``skipped``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graphfusion.errors import MappingError
from graphfusion.readers import FORMATS
from graphfusion.schema import DEFINITIONS, Schema, load_yaml
from graphfusion.transforms import TRANSFORMS, as_text
from graphfusion.values import is_missing

__all__ = [
    "LoaderMapping",
    "Field",
    "NodeSpec",
    "RelSpec",
    "TableSpec",
    "TRANSFORMS",
    "load_mapping",
    "builtin_mappings",
]

LOADERS_DIR = DEFINITIONS / "loaders"


_FIELD_OPTIONS = {"sep", "prefix", "regex", "index", "equals"}

# ----------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Field:
    """How one value is taken from a row."""

    column: str | None = None
    columns: tuple[str, ...] = ()
    template: str | None = None
    value: Any = None
    transforms: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def needs(self) -> list[str]:
        """The columns this field reads."""
        if self.column:
            return [self.column]
        if self.columns:
            return list(self.columns)
        if self.template:
            return re.findall(r"{([^{}]+)}", self.template)
        return []

    def get(self, row: Mapping[str, Any]) -> Any:
        """Evaluate on a row.

        Raises:
            ValueError: When a transform rejects the value.
        """
        if self.column is not None:
            value = row.get(self.column)
        elif self.columns:
            value = next((row.get(c) for c in self.columns if not is_missing(row.get(c))), None)
        elif self.template is not None:
            parts = {}
            for name in self.needs():
                v = row.get(name)
                if is_missing(v):
                    return None
                parts[name] = as_text(v)
            value = self.template.format(**parts)
        else:
            value = self.value
        for name in self.transforms:
            if value is None:
                break
            value = TRANSFORMS[name](value, self.options)
        return value


@dataclass(frozen=True)
class TableSpec:
    """A table read from a source: the source's name, a file in it (folders), the format."""

    name: str
    source: str
    format: str
    file: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeSpec:
    """Rows of a table as nodes of a label."""

    label: str
    table: str
    key: Field
    properties: Mapping[str, Field]
    unique: bool = True
    where: Field | None = None


@dataclass(frozen=True)
class EndSpec:
    """One end of a relationship: its label and the field giving its key."""

    label: str
    key: Field


@dataclass(frozen=True)
class RelSpec:
    """Rows of a table as relationships of a type."""

    type: str
    table: str
    start: EndSpec
    end: EndSpec
    properties: Mapping[str, Field]
    unique: bool = False
    where: Field | None = None
    optional: bool = False
    skip_dangling: bool = False


@dataclass(frozen=True)
class LoaderMapping:
    """A parsed, schema-checked loader mapping."""

    name: str
    description: str
    sources: Mapping[str, str]
    tables: Mapping[str, TableSpec]
    nodes: tuple[NodeSpec, ...]
    relationships: tuple[RelSpec, ...]
    path: str = "<memory>"


def builtin_mappings() -> dict[str, Path]:
    """The mappings shipped with graphfusion, by the ``name`` each file declares (the file
    name when it declares none)."""
    out: dict[str, Path] = {}
    for path in sorted(LOADERS_DIR.glob("*.yaml")):
        match = re.search(r"^name:\s*(\S+)\s*$", path.read_text(encoding="utf-8"), re.M)
        out[match.group(1) if match else path.stem] = path
    return out


def load_mapping(name_or_path: str | Path, schema: Schema) -> LoaderMapping:
    """Read a mapping by built-in name or path, and check it against the schema.

    Raises:
        MappingError: Unknown name, unreadable file, or a rule broken (the message names the
            file and the place: a label, property, table or transform not known).
    """
    builtins = builtin_mappings()
    text = str(name_or_path)
    if text in builtins:
        path = builtins[text]
    else:
        path = Path(text)
        if not path.exists():
            raise MappingError(
                f"no mapping {text!r}: not a built-in ({', '.join(builtins)}) nor a file"
            )
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    return parse_mapping(raw, schema, str(path))


def parse_mapping(raw: Any, schema: Schema, where: str = "<memory>") -> LoaderMapping:
    """Check a mapping given as plain data against the schema.

    Raises:
        MappingError: On any rule broken, naming the place.
    """
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: a mapping must be a YAML mapping")
    unknown = set(raw) - {"name", "description", "sources", "tables", "nodes", "relationships"}
    if unknown:
        raise MappingError(f"{where}: unknown top-level keys {sorted(unknown)}")
    sources = raw.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise MappingError(f"{where}: 'sources' must name at least one source")
    src_desc = {}
    for name, spec in sources.items():
        desc = spec.get("description", "") if isinstance(spec, dict) else str(spec or "")
        src_desc[str(name)] = str(desc)
    tables = {}
    for name, spec in (raw.get("tables") or {}).items():
        tables[str(name)] = _parse_table(str(name), spec, src_desc, f"{where}: tables.{name}")
    nodes = tuple(
        _parse_node(i, spec, tables, schema, f"{where}: nodes[{i}]")
        for i, spec in enumerate(raw.get("nodes") or [])
    )
    rels = tuple(
        _parse_rel(i, spec, tables, schema, f"{where}: relationships[{i}]")
        for i, spec in enumerate(raw.get("relationships") or [])
    )
    if not nodes and not rels:
        raise MappingError(f"{where}: the mapping makes no nodes and no relationships")
    return LoaderMapping(
        name=str(raw.get("name") or Path(where).stem),
        description=str(raw.get("description", "")),
        sources=src_desc,
        tables=tables,
        nodes=nodes,
        relationships=rels,
        path=where,
    )


def _parse_table(name: str, spec: Any, sources: Mapping[str, str], where: str) -> TableSpec:
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a table must be a mapping with 'source' and 'format'")
    unknown = set(spec) - {"source", "file", "format", "delimiter"}
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
    src = spec.get("source")
    if src not in sources:
        raise MappingError(f"{where}: source {src!r} is not declared in 'sources'")
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise MappingError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    options = {"delimiter": _delimiter(spec["delimiter"], where)} if "delimiter" in spec else {}
    return TableSpec(name, str(src), str(fmt), spec.get("file"), options)


def _delimiter(raw: Any, where: str) -> str:
    """A table's CSV ``delimiter``: one character, not a quote nor a line end."""
    if not isinstance(raw, str) or len(raw) != 1:
        raise MappingError(f"{where}: delimiter must be one character, got {raw!r}")
    if raw in '"\r\n':
        raise MappingError(f"{where}: delimiter cannot be a quote or a line end, got {raw!r}")
    return raw


def _parse_field(raw: Any, where: str) -> Field:
    if isinstance(raw, str):
        return Field(column=raw)
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: a field is a column name or a mapping, got {raw!r}")
    unknown = set(raw) - {"column", "columns", "template", "value", "transform"} - _FIELD_OPTIONS
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
    kinds = [k for k in ("column", "columns", "template", "value") if k in raw]
    if len(kinds) != 1:
        raise MappingError(f"{where}: give exactly one of column, columns, template, value")
    transforms = raw.get("transform") or []
    if isinstance(transforms, str):
        transforms = [transforms]
    for t in transforms:
        if t not in TRANSFORMS:
            raise MappingError(
                f"{where}: unknown transform {t!r}; known: {', '.join(sorted(TRANSFORMS))}"
            )
    columns = raw.get("columns") or ()
    if "columns" in raw and not (isinstance(columns, list) and columns):
        raise MappingError(f"{where}: 'columns' must be a non-empty list")
    return Field(
        column=raw.get("column"),
        columns=tuple(str(c) for c in columns),
        template=raw.get("template"),
        value=raw.get("value"),
        transforms=tuple(transforms),
        options={k: raw[k] for k in _FIELD_OPTIONS if k in raw},
    )


def _table(spec: dict[str, Any], tables: Mapping[str, TableSpec], where: str) -> str:
    table = spec.get("table")
    if table not in tables:
        raise MappingError(f"{where}: table {table!r} is not declared in 'tables'")
    return str(table)


def _parse_props(raw: Any, has: Callable[[str], bool], owner: str, where: str) -> dict[str, Field]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: 'properties' must map property -> field")
    out = {}
    for prop, fraw in raw.items():
        if not has(str(prop)):
            raise MappingError(f"{where}: {owner} has no property {prop!r} in the schema")
        out[str(prop)] = _parse_field(fraw, f"{where}.properties.{prop}")
    return out


def _parse_node(
    i: int, spec: Any, tables: Mapping[str, TableSpec], schema: Schema, where: str
) -> NodeSpec:
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a node spec must be a mapping")
    unknown = set(spec) - {"label", "table", "key", "properties", "unique", "where"}
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
    label = str(spec.get("label"))
    if label not in schema.nodes:
        raise MappingError(
            f"{where}: label {label!r} is not in the schema ({', '.join(schema.nodes)})"
        )
    node = schema.nodes[label]
    if "key" not in spec:
        raise MappingError(f"{where}: 'key' is required")
    props = _parse_props(spec.get("properties"), node.has_property, label, where)
    if node.key in props:
        raise MappingError(f"{where}: the key {node.key!r} is given by 'key', not 'properties'")
    return NodeSpec(
        label=str(label),
        table=_table(spec, tables, where),
        key=_parse_field(spec["key"], f"{where}.key"),
        properties=props,
        unique=bool(spec.get("unique", True)),
        where=_parse_field(spec["where"], f"{where}.where") if "where" in spec else None,
    )


def _parse_end(raw: Any, schema: Schema, where: str) -> EndSpec:
    if not isinstance(raw, dict) or "label" not in raw or "key" not in raw:
        raise MappingError(f"{where}: an end must be {{label: L, key: field}}")
    if raw["label"] not in schema.nodes:
        raise MappingError(f"{where}: label {raw['label']!r} is not in the schema")
    return EndSpec(str(raw["label"]), _parse_field(raw["key"], f"{where}.key"))


def _parse_rel(
    i: int, spec: Any, tables: Mapping[str, TableSpec], schema: Schema, where: str
) -> RelSpec:
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a relationship spec must be a mapping")
    unknown = set(spec) - {
        "type",
        "table",
        "from",
        "to",
        "properties",
        "unique",
        "where",
        "optional",
        "skip_dangling",
    }
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
    rtype = str(spec.get("type"))
    if rtype not in schema.relationships:
        raise MappingError(
            f"{where}: relationship type {rtype!r} is not in the schema "
            f"({', '.join(schema.relationships)})"
        )
    rel = schema.relationships[rtype]
    start = _parse_end(spec.get("from"), schema, f"{where}.from")
    end = _parse_end(spec.get("to"), schema, f"{where}.to")
    if not rel.connects(start.label, end.label):
        raise MappingError(f"{where}: {rtype} does not connect ({start.label})->({end.label})")
    return RelSpec(
        type=str(rtype),
        table=_table(spec, tables, where),
        start=start,
        end=end,
        properties=_parse_props(spec.get("properties"), rel.has_property, rtype, where),
        unique=bool(spec.get("unique", False)),
        where=_parse_field(spec["where"], f"{where}.where") if "where" in spec else None,
        optional=bool(spec.get("optional", False)),
        skip_dangling=bool(spec.get("skip_dangling", False)),
    )
