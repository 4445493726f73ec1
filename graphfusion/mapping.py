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
``template`` (``"{a}:{b}"``; ``{{`` and ``}}`` are literal braces, a name may take a format
such as ``{a:>5}``) or ``value`` (a constant, checked against its property's type; a constant
key must give a key: text or a number, or a list of them), and optional ``transform`` (a name
or a list of names from :data:`TRANSFORMS`) with their options:
``sep`` (text; of ``join``, ``split``, ``part``, ``head``, ``flags`` and ``lead``, a regular
expression for ``lead`` and for ``split`` with ``regex: true``), ``prefix`` (text; of
``prefix``) and ``index`` (an integer; of ``part``, ``item`` and ``head``). An option that none
of the field's transforms reads is an error, as are settings (``unique``, ``optional``,
``skip_dangling``, ``regex``) that are not ``true`` or ``false``. A key that yields a list
(``transform: split``) makes one node or relationship per element.
A spec's ``where`` field (which must read a column) keeps only the rows where it is non-empty
(or, with ``equals``, where its text, stripped of spaces at its ends, is that value; case
counts). When every spec reading a table has a ``where``, each row that none of them keeps is
reported (``type 'CLICKED' matches none of 'VIEWED', 'PURCHASED'``). The pseudo-column
``__dir__`` is the folder of the table's file, for paths relative to it. Node specs are
``unique`` by default (a repeated key in the same table is reported); ``unique: false`` merges
repeats (for entities named in many rows, such as the users of a review file). Relationship
specs merge repeated pairs unless ``unique: true``, and report a row with an empty end key
unless ``optional: true`` (a product without a brand). A row that any spec reading its table
reports makes nothing in the others either (it is reported once, with each spec's reason): make
a link ``optional``, or give a spec a ``where``, for what a row may lack. A merge (of repeats,
or of the specs that name the same node or pair) keeps each property's first non-null value,
and adds up the lists of a schema property with ``merge: union``. A link to a node that exists
neither in the load nor in the store is reported (on its own: the rest of its row loads), or,
with ``skip_dangling: true`` (links to products outside a dataset, such as Amazon's also_buy),
only counted in the report's ``skipped``. A mapping may also be given as plain data (a dict, as
``yaml.safe_load`` of its file gives it).
"""

from __future__ import annotations

import difflib
import os
import re
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from graphfusion.errors import MappingError
from graphfusion.readers import FORMATS
from graphfusion.schema import DEFINITIONS, Property, Schema, load_yaml
from graphfusion.transforms import TRANSFORMS, as_text
from graphfusion.values import coerce, is_missing, nfc_key

__all__ = [
    "LoaderMapping",
    "Field",
    "NodeSpec",
    "RelSpec",
    "TableSpec",
    "TRANSFORMS",
    "load_mapping",
    "builtin_mappings",
    "check_columns",
    "spec_fields",
]

LOADERS_DIR = DEFINITIONS / "loaders"


_FIELD_OPTIONS = {"sep", "prefix", "regex", "index", "equals"}
#: The keys each part of a mapping accepts, in the order an error lists them.
_TOP_KEYS = ("name", "description", "sources", "tables", "nodes", "relationships")
_SOURCE_KEYS = ("description",)
_TABLE_KEYS = ("source", "file", "format", "delimiter")
_FIELD_KEYS = ("column", "columns", "template", "value", "transform", "sep", "prefix", "regex",
               "index")  # fmt: skip
_WHERE_KEYS = (*_FIELD_KEYS, "equals")
_NODE_KEYS = ("label", "table", "key", "properties", "unique", "where")
_END_KEYS = ("label", "key")
_REL_KEYS = ("type", "table", "from", "to", "properties", "unique", "where", "optional",
             "skip_dangling")  # fmt: skip
#: The transforms that read each option (``equals`` is read by a spec's ``where`` instead).
_OPTION_USERS: dict[str, tuple[str, ...]] = {
    "sep": ("join", "split", "part", "head", "flags", "lead"),
    "regex": ("split",),
    "prefix": ("prefix",),
    "index": ("part", "item", "head"),
}

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
            return _template_names(self.template)
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


#: Formats whose records carry keys of their own: a key that no record of a file (or column
#: of a DataFrame) has is an empty value there (an optional field), not a mistaken name.
_KEYED_FORMATS = {"jsonl", "pylines", "frame"}
#: Columns every table has: ``__dir__``, the folder of the table's file.
_PSEUDO_COLUMNS = {"__dir__"}


def spec_fields(mapping: LoaderMapping, table: str) -> list[tuple[str, Field]]:
    """Every field of the specs that read ``table``, with its place in the mapping
    (``nodes[0].properties.title``, ``relationships[2].to.key``), in mapping order."""
    out: list[tuple[str, Field]] = []
    for i, node in enumerate(mapping.nodes):
        if node.table == table:
            out += _own_fields(f"nodes[{i}]", node.key, node.where, node.properties)
    for i, rel in enumerate(mapping.relationships):
        if rel.table == table:
            place = f"relationships[{i}]"
            out += [(f"{place}.from.key", rel.start.key), (f"{place}.to.key", rel.end.key)]
            out += _own_fields(place, None, rel.where, rel.properties)
    return out


def _own_fields(
    place: str, key: Field | None, where: Field | None, properties: Mapping[str, Field]
) -> list[tuple[str, Field]]:
    out = [(f"{place}.key", key)] if key is not None else []
    if where is not None:
        out.append((f"{place}.where", where))
    return out + [(f"{place}.properties.{name}", fld) for name, fld in properties.items()]


def check_columns(
    mapping: LoaderMapping, table: str, columns: Sequence[str], file: str | None = None
) -> None:
    """Check that the specs reading ``table`` read only columns it has.

    A field naming a column the table lacks (a typo such as ``titel``) would give nothing in
    every row, silently; a ``columns`` list is wrong only when none of its columns is there.
    Tables of JSON or Python-literal lines and DataFrames are not checked: a key that no
    record has is an empty value there. Meant for a table read with rows: a file skipped
    whole for its header (a wrong delimiter, a repeated name) is reported on its own.

    Args:
        mapping: The mapping.
        table: The name of one of its tables.
        columns: The columns the table's file has.
        file: The file read, named in the message.

    Raises:
        MappingError: Naming the mapping file, the field's place, the column, the table and
            the columns it has.
    """
    if mapping.tables[table].format in _KEYED_FORMATS:
        return
    have = set(columns) | _PSEUDO_COLUMNS
    for place, fld in spec_fields(mapping, table):
        needs = fld.needs()
        absent = [c for c in needs if c not in have]
        if not absent or (fld.columns and len(absent) < len(needs)):
            continue
        shown = ", ".join(repr(c) for c in absent)
        listed = ", ".join(columns) if len(columns) <= 30 else ", ".join(columns[:30]) + ", ..."
        raise MappingError(
            f"{mapping.path}: {place}: no column {shown} in table {table!r}"
            f"{f' ({file})' if file else ''}; its columns: {listed or 'none'}"
            f"{_other_forms(absent, columns)}"
        )


def _other_forms(absent: Sequence[str], columns: Sequence[str]) -> str:
    """A note for the absent names that a column has in another Unicode form (``é`` typed
    as ``e`` and a combining accent, as macOS may export it), which print alike; empty when
    none has."""
    notes = [
        f"; the file's {col!r} is the same name in Unicode form {_form(col)} (the mapping's "
        f"is in another Unicode form, {_form(name)}): type the name as the file has it, or "
        "save the file's header in NFC"
        for name in absent
        for col in columns
        if col != name and nfc_key(col) == nfc_key(name)
    ]
    return "".join(notes)


def _form(text: str) -> str:
    """The first Unicode normalization form ``text`` is in (``mixed`` when in none)."""
    forms: tuple[Literal["NFC", "NFD", "NFKC", "NFKD"], ...] = ("NFC", "NFD", "NFKC", "NFKD")
    return next((f for f in forms if unicodedata.is_normalized(f, text)), "mixed")


def builtin_mappings() -> dict[str, Path]:
    """The mappings shipped with graphfusion, by the ``name`` each file declares (the file
    name when it declares none)."""
    out: dict[str, Path] = {}
    for path in sorted(LOADERS_DIR.glob("*.yaml")):
        match = re.search(r"^name:\s*(\S+)\s*$", path.read_text(encoding="utf-8"), re.M)
        out[match.group(1) if match else path.stem] = path
    return out


def load_mapping(
    name_or_path: str | os.PathLike[str] | Mapping[str, Any], schema: Schema
) -> LoaderMapping:
    """Read a mapping by built-in name or path, and check it against the schema.

    Args:
        name_or_path: A built-in mapping's name, a mapping file's path, or a mapping as plain
            data (what ``yaml.safe_load`` of a mapping file gives; named ``<memory>`` in
            messages).
        schema: The schema it maps into.

    Raises:
        MappingError: Unknown name, unreadable file, or a rule broken (the message names the
            file and the place: a label, property, table or transform not known).
    """
    if isinstance(name_or_path, Mapping):
        return parse_mapping(dict(name_or_path), schema)
    path = _mapping_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc}") from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {_yaml_problem(exc, text)}") from None
    return parse_mapping(raw, schema, str(path))


def _mapping_path(name_or_path: Any) -> Path:
    """The file of a built-in mapping's name, or a mapping file's path.

    Raises:
        MappingError: Neither names a mapping, or the value is not text nor a path (the text
            of a mapping itself, given where its path goes, is named as such).
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise MappingError(
            "a mapping is a built-in name, a file's path, a LoaderMapping or plain data "
            f"(a dict), got {type(name_or_path).__name__}"
        )
    builtins = builtin_mappings()
    text = os.fspath(name_or_path)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    if text in builtins:
        return builtins[text]
    if "\n" in text.strip():
        raise MappingError(
            "the text of a mapping, not a name or a path, was given: write it to a file and "
            "give the file's path, or give yaml.safe_load(text)"
        )
    path = Path(text)
    try:
        found = bool(text) and path.exists()
    except OSError as exc:  # a name too long for the file system
        raise MappingError(f"no mapping {text[:80]!r}: {exc.strerror}") from None
    if not found:
        raise MappingError(
            f"no mapping {text!r}: not a built-in ({', '.join(builtins)}) nor a file"
        )
    return path


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """A YAML error on one line, placed by the file's line and column (PyYAML's own message
    names ``"<unicode string>"`` and takes several lines); a tab that indents is named."""
    mark = getattr(exc, "problem_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return " ".join(str(exc).split())
    out = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    context = exc.context_mark
    if "\t" in line[: len(line) - len(line.lstrip())]:
        out += " (YAML indents with spaces; this line starts with a tab)"
    elif exc.context and context is not None and context.line != mark.line:
        out += f" ({exc.context} from line {context.line + 1}, column {context.column + 1})"
    elif exc.context:
        out += f" ({exc.context})"
    return out


def parse_mapping(raw: Any, schema: Schema, where: str = "<memory>") -> LoaderMapping:
    """Check a mapping given as plain data against the schema.

    Raises:
        MappingError: On any rule broken, naming the place.
    """
    if not isinstance(raw, dict):
        got = "nothing (an empty file)" if raw is None else f"a {type(raw).__name__}"
        raise MappingError(
            f"{where}: a mapping must be a YAML mapping with the keys {', '.join(_TOP_KEYS)}; "
            f"got {got}"
        )
    _check_keys(raw, _TOP_KEYS, where, "top-level keys")
    for key in ("name", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise MappingError(f"{where}: {key} must be text, got {raw[key]!r}")
    sources = raw.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise MappingError(f"{where}: 'sources' must name at least one source")
    src_desc = {}
    for name, spec in sources.items():
        src_desc[str(name)] = _source_description(spec, f"{where}: sources.{name}")
    raw_tables = raw.get("tables") or {}
    if not isinstance(raw_tables, dict):
        raise MappingError(f"{where}: 'tables' must map table names to tables, got {raw_tables!r}")
    tables = {}
    for name, spec in raw_tables.items():
        tables[str(name)] = _parse_table(str(name), spec, src_desc, f"{where}: tables.{name}")
    nodes = tuple(
        _parse_node(i, spec, tables, schema, f"{where}: nodes[{i}]")
        for i, spec in enumerate(_spec_list(raw, "nodes", "node specs", where))
    )
    rels = tuple(
        _parse_rel(i, spec, tables, schema, f"{where}: relationships[{i}]")
        for i, spec in enumerate(_spec_list(raw, "relationships", "relationship specs", where))
    )
    if not nodes and not rels:
        raise MappingError(f"{where}: the mapping makes no nodes and no relationships")
    return LoaderMapping(
        name=str(raw.get("name") or Path(where).stem),
        description=str(raw.get("description") or ""),
        sources=src_desc,
        tables=tables,
        nodes=nodes,
        relationships=rels,
        path=where,
    )


def _source_description(spec: Any, where: str) -> str:
    """A source's description: the text given, or the ``description`` of a mapping."""
    if spec is None or isinstance(spec, str):
        return spec or ""
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a source is a description or {{description: text}}")
    _check_keys(spec, _SOURCE_KEYS, where)
    return str(spec.get("description") or "")


def _spec_list(raw: dict[str, Any], key: str, what: str, where: str) -> list[Any]:
    specs = raw.get(key)
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise MappingError(f"{where}: {key!r} must be a list of {what}, got {type(specs).__name__}")
    return specs


def _flag(spec: dict[str, Any], name: str, default: bool, where: str) -> bool:
    """A spec's true/false setting (text such as ``'no'`` is refused, not read as true)."""
    value = spec.get(name, default)
    if not isinstance(value, bool):
        raise MappingError(f"{where}: {name} must be true or false, got {value!r}")
    return value


def _parse_table(name: str, spec: Any, sources: Mapping[str, str], where: str) -> TableSpec:
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a table must be a mapping with 'source' and 'format'")
    _check_keys(spec, _TABLE_KEYS, where)
    src = _declared(spec.get("source"), "source", sources, "sources", where)
    fmt = spec.get("format")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise MappingError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    file = spec.get("file")
    if file is not None and (not isinstance(file, str) or not file):
        raise MappingError(f"{where}: file must be text, got {file!r}")
    options = {"delimiter": _delimiter(spec["delimiter"], where)} if "delimiter" in spec else {}
    return TableSpec(name, src, fmt, file, options)


def _delimiter(raw: Any, where: str) -> str:
    """A table's CSV ``delimiter``: one character, not a quote nor a line end."""
    if not isinstance(raw, str) or len(raw) != 1:
        raise MappingError(f"{where}: delimiter must be one character, got {raw!r}")
    if raw in '"\r\n':
        raise MappingError(f"{where}: delimiter cannot be a quote or a line end, got {raw!r}")
    return raw


def _template_names(template: str) -> list[str]:
    """The column names a template fills in (``{{`` and ``}}`` are literal braces; a name
    stops at its ``!`` conversion or ``:`` format); [] for a template that does not parse."""
    try:
        return [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
    except ValueError:
        return []


def _check_template(template: Any, where: str) -> str:
    """A template that fills in named columns and formats text."""
    if not isinstance(template, str):
        raise MappingError(f"{where}: template must be text, got {template!r}")
    try:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
        for name in names:
            if not name or name.isdigit() or set(name) & set(".["):
                raise ValueError(f"{{{name}}} is not a column name (a name, without '.' or '[')")
        template.format(**dict.fromkeys(names, "text"))
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise MappingError(f"{where}: bad template {template!r}: {exc}") from None
    return template


def _column_name(raw: Any, what: str, where: str) -> str:
    """A column's name: text that is not empty.

    Raises:
        MappingError: An empty name (it would read nothing in every row), or a value that
            YAML read as a boolean, a number or null (``no``, ``12``, ``null``), with the fix.
    """
    if raw == "":
        raise MappingError(f"{where}: a column name must not be empty")
    if not isinstance(raw, str):
        hint = (
            " (quote a column name that YAML reads as a boolean, a number or null)"
            if raw is None or isinstance(raw, bool | int | float)
            else ""
        )
        raise MappingError(f"{where}: {what} must be text, got {raw!r}{hint}")
    return raw


def _check_options(
    options: dict[str, Any], transforms: list[str], is_where: bool, where: str
) -> None:
    """Each option of the right type, and read by one of the field's transforms."""
    for opt, value in options.items():
        if opt == "equals":
            if not is_where:
                raise MappingError(f"{where}: 'equals' is only for a spec's where")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise MappingError(
                    f"{where}: equals must be text or a number, got {value!r}"
                    + (
                        " (quote it: YAML reads yes and no as booleans)"
                        if isinstance(value, bool)
                        else ""
                    )
                )
            continue
        if not any(t in _OPTION_USERS[opt] for t in transforms):
            raise MappingError(
                f"{where}: option {opt!r} is used by none of its transforms "
                f"({', '.join(transforms) or 'none'}; {opt!r} is for "
                f"{', '.join(_OPTION_USERS[opt])})"
            )
        if opt == "sep" and (not isinstance(value, str) or not value):
            raise MappingError(f"{where}: sep must be text, got {value!r}")
        if opt == "prefix" and not isinstance(value, str):
            raise MappingError(f"{where}: prefix must be text, got {value!r}")
        if opt == "regex" and not isinstance(value, bool):
            raise MappingError(f"{where}: regex must be true or false, got {value!r}")
        if opt == "index" and (isinstance(value, bool) or not isinstance(value, int)):
            raise MappingError(f"{where}: index must be an integer, got {value!r}")
    if "head" in transforms and options.get("index", 1) < 1:
        raise MappingError(f"{where}: head needs an index of 1 or more, got {options['index']}")
    if "lead" in transforms or ("split" in transforms and options.get("regex")):
        try:
            re.compile(str(options.get("sep", r"\s")))
        except re.error as exc:
            raise MappingError(
                f"{where}: sep is not a valid regular expression ({exc}): {options['sep']!r}"
            ) from None


def _parse_field(raw: Any, where: str, is_where: bool = False) -> Field:
    if not isinstance(raw, dict | list):
        return Field(column=_column_name(raw, "a field (a column name)", where))
    if not isinstance(raw, dict):
        raise MappingError(
            f"{where}: a field is a column name or a mapping with one of column, columns, "
            f"template, value; got {raw!r}"
        )
    if "equals" in raw and not is_where:
        raise MappingError(f"{where}: 'equals' is only for a spec's where")
    _check_keys(raw, _WHERE_KEYS if is_where else _FIELD_KEYS, where)
    kinds = [k for k in ("column", "columns", "template", "value") if k in raw]
    if len(kinds) != 1:
        raise MappingError(f"{where}: give exactly one of column, columns, template, value")
    transforms = raw.get("transform", [])
    if isinstance(transforms, str):
        transforms = [transforms]
    if not isinstance(transforms, list):
        raise MappingError(
            f"{where}: transform must be a name or a list of names, got {transforms!r}"
        )
    for t in transforms:
        if not isinstance(t, str) or t not in TRANSFORMS:
            raise MappingError(
                f"{where}: unknown transform {t!r}; known: {', '.join(sorted(TRANSFORMS))}"
            )
    options = {k: raw[k] for k in _FIELD_OPTIONS if k in raw}
    _check_options(options, transforms, is_where, where)
    columns = raw.get("columns") or ()
    if "columns" in raw and not (isinstance(columns, list) and columns):
        raise MappingError(f"{where}: 'columns' must be a non-empty list")
    return Field(
        column=_column_name(raw["column"], "column", where) if "column" in raw else None,
        columns=tuple(_column_name(c, "each of columns", where) for c in columns),
        template=_check_template(raw["template"], where) if "template" in raw else None,
        value=raw.get("value"),
        transforms=tuple(transforms),
        options=options,
    )


def _parse_key(raw: Any, where: str) -> Field:
    """A node's or an end's key field; a constant one (a ``value``, or a template that names
    no column) must give a key, as it gives the same in every row.

    Raises:
        MappingError: The field is wrong, or it is a constant that gives no key (null, empty
            text) or a value no key can be (a boolean, a mapping, a list in a list).
    """
    fld = _parse_field(raw, where)
    if fld.needs():
        return fld
    from graphfusion.columnar import key_list  # it imports this module

    try:
        value = fld.get({})
        found = key_list(value)
    except ValueError as exc:
        raise MappingError(f"{where}: {exc}") from None
    if not found:
        raise MappingError(f"{where}: a constant key must give a key, got {value!r}")
    return fld


def _parse_where(raw: Any, where: str) -> Field:
    """A spec's ``where``: a field that reads a column.

    Raises:
        MappingError: The field is wrong, or it reads no column (a ``value``, a template
            naming none), which would keep every row or none, whatever the data.
    """
    fld = _parse_field(raw, where, is_where=True)
    if not fld.needs():
        raise MappingError(
            f"{where}: a where must read a column (a column, columns or a template naming "
            "one): a constant keeps every row or none"
        )
    return fld


def _table(spec: dict[str, Any], tables: Mapping[str, TableSpec], where: str) -> str:
    return _declared(spec.get("table"), "table", tables, "tables", where)


def _suggestion(name: Any, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice nearest a mistyped name, or nothing."""
    text = str(name)
    near = difflib.get_close_matches(text, list(choices), n=1)
    if not near and len(text) >= 3:  # an abbreviation: "desc", "prop"
        near = [c for c in choices if c.startswith(text)][:1]
    return f" (did you mean {near[0]!r}?)" if near else ""


def _check_keys(
    raw: Mapping[Any, Any], accepted: Sequence[str], where: str, what: str = "keys"
) -> None:
    """Refuse keys of a part of the mapping that it does not read (a typo such as
    ``propertes`` would drop the whole setting in silence), naming those it accepts.

    Raises:
        MappingError: ``unknown keys ['propertes'] (did you mean 'properties'?); accepted: ...``.
    """
    unknown = sorted(str(k) for k in raw if k not in accepted)
    if unknown:
        raise MappingError(
            f"{where}: unknown {what} {unknown}{_suggestion(unknown[0], accepted)}; "
            f"accepted: {', '.join(accepted)}"
        )


def _declared(name: Any, what: str, declared: Mapping[str, Any], section: str, where: str) -> str:
    """A name that must be one of a section's (a spec's table, a table's source).

    Raises:
        MappingError: It is absent or not declared, naming those that are.
    """
    listed = ", ".join(declared) or "none"
    if name is None:
        raise MappingError(f"{where}: {what!r} is required; declared: {listed}")
    if not isinstance(name, str) or name not in declared:
        hint = (
            " (quote it: YAML read it as a number)"
            if str(name) in declared
            else _suggestion(name, list(declared))
        )
        raise MappingError(
            f"{where}: {what} {name!r} is not declared in {section!r}{hint}; declared: {listed}"
        )
    return name


def _parse_props(
    raw: Any,
    has: Callable[[str], bool],
    prop: Callable[[str], Property],
    owner: str,
    names: Sequence[str],
    where: str,
) -> dict[str, Field]:
    """A spec's ``properties``: each a property of ``owner`` (whose other properties are
    ``names``) mapped to a field.

    Raises:
        MappingError: Naming the property's place, and the properties the schema has.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: 'properties' must map property -> field")
    out = {}
    for name, fraw in raw.items():
        place = f"{where}.properties.{name}"
        if not has(str(name)):
            raise MappingError(
                f"{place}: {owner} has no property {name!r} in the schema"
                f"{_suggestion(name, names)}; it has: {', '.join(names) or 'none'}"
            )
        fld = _parse_field(fraw, place)
        if fld.column is None and not fld.columns and fld.template is None:
            # A constant: the same in every row, so checked once here, not rejected per row.
            try:
                coerce(fld.get({}), prop(str(name)))
            except ValueError as exc:
                raise MappingError(f"{place}: {exc}") from None
        out[str(name)] = fld
    return out


def _label(raw: Any, schema: Schema, where: str) -> str:
    if raw is None:
        raise MappingError(f"{where}: 'label' is required")
    if not isinstance(raw, str) or raw not in schema.nodes:
        raise MappingError(
            f"{where}: label {raw!r} is not in the schema ({', '.join(schema.nodes)})"
        )
    return raw


def _parse_node(
    i: int, spec: Any, tables: Mapping[str, TableSpec], schema: Schema, where: str
) -> NodeSpec:
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a node spec must be a mapping")
    _check_keys(spec, _NODE_KEYS, where)
    label = _label(spec.get("label"), schema, where)
    node = schema.nodes[label]
    if "key" not in spec:
        raise MappingError(f"{where}: 'key' is required")
    names = [p.name for p in node.properties if p.name != node.key]
    props = _parse_props(spec.get("properties"), node.has_property, node.prop, label, names, where)
    if node.key in props:
        raise MappingError(f"{where}: the key {node.key!r} is given by 'key', not 'properties'")
    return NodeSpec(
        label=label,
        table=_table(spec, tables, where),
        key=_parse_key(spec["key"], f"{where}.key"),
        properties=props,
        unique=_flag(spec, "unique", True, where),
        where=_parse_where(spec["where"], f"{where}.where") if "where" in spec else None,
    )


def _parse_end(raw: Any, schema: Schema, where: str) -> EndSpec:
    if not isinstance(raw, dict) or "label" not in raw or "key" not in raw:
        raise MappingError(f"{where}: an end must be {{label: L, key: field}}")
    _check_keys(raw, _END_KEYS, where)
    label = _label(raw["label"], schema, where)
    return EndSpec(label, _parse_key(raw["key"], f"{where}.key"))


def _parse_rel(
    i: int, spec: Any, tables: Mapping[str, TableSpec], schema: Schema, where: str
) -> RelSpec:
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: a relationship spec must be a mapping")
    _check_keys(spec, _REL_KEYS, where)
    rtype = spec.get("type")
    if rtype is None:
        raise MappingError(f"{where}: 'type' is required")
    if not isinstance(rtype, str) or rtype not in schema.relationships:
        raise MappingError(
            f"{where}: relationship type {rtype!r} is not in the schema "
            f"({', '.join(schema.relationships)})"
        )
    rel = schema.relationships[rtype]
    start = _parse_end(spec.get("from"), schema, f"{where}.from")
    end = _parse_end(spec.get("to"), schema, f"{where}.to")
    if not rel.connects(start.label, end.label):
        pairs = ", ".join(f"({a})->({b})" for a, b in rel.between)
        raise MappingError(
            f"{where}: {rtype} does not connect ({start.label})->({end.label}); it connects {pairs}"
        )
    return RelSpec(
        type=rtype,
        table=_table(spec, tables, where),
        start=start,
        end=end,
        properties=_parse_props(
            spec.get("properties"),
            rel.has_property,
            rel.prop,
            rtype,
            [p.name for p in rel.properties],
            where,
        ),
        unique=_flag(spec, "unique", False, where),
        where=_parse_where(spec["where"], f"{where}.where") if "where" in spec else None,
        optional=_flag(spec, "optional", False, where),
        skip_dangling=_flag(spec, "skip_dangling", False, where),
    )
