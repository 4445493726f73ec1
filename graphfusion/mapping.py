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
          price: {column: price, transform: price}  # ... or a column with transforms
    relationships:
      - type: IN_CATEGORY
        table: products
        from: {label: Product, key: id}
        to: {label: Category, key: category_id}

A field is a column name, or a mapping with one of ``column``, ``columns`` (first non-empty),
``template`` (``"{a}:{b}"``) or ``value`` (a constant), and optional ``transform`` (a name or a
list of names from :data:`TRANSFORMS`) with their options (``sep``, ``prefix``). A key that
yields a list (``transform: split``) makes one node or relationship per element.
A spec's ``where`` field keeps only the rows where it is non-empty (or, with ``equals``, equal
to that value). The pseudo-column ``__dir__`` is the folder of the table's file, for paths
relative to it. Node specs are ``unique`` by default (a repeated key in the same table is reported);
``unique: false`` merges repeats (for entities named in many rows, such as the users of a
review file). Relationship specs merge repeated pairs unless ``unique: true``, and report a
row with an empty end key unless ``optional: true`` (a product without a brand). A link to a
node that exists neither in the load nor in the store is reported, or, with
``skip_dangling: true`` (links to products outside a dataset, such as Amazon's also_buy),
only counted in the report's ``skipped``.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graphfusion.errors import MappingError
from graphfusion.readers import FORMATS
from graphfusion.schema import DEFINITIONS, Schema
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

# ----------------------------------------------------------------------------- transforms


def _strip(v: Any, o: Mapping[str, Any]) -> Any:
    return v.strip() if isinstance(v, str) else v


def _lower(v: Any, o: Mapping[str, Any]) -> Any:
    return v.lower() if isinstance(v, str) else v


def _join(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return str(o.get("sep", " ")).join(str(x).strip() for x in v if not is_missing(x))
    return v


def _first(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return next((x for x in v if not is_missing(x)), None)
    return v


def _last(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return next((x for x in reversed(v) if not is_missing(x)), None)
    return v


def _split(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, str):
        sep = o.get("sep", ";")
        parts = re.split(sep, v) if o.get("regex") else v.split(sep)
        return [p.strip() for p in parts if p.strip()]
    return v


def _unix_s(v: Any, o: Mapping[str, Any]) -> Any:
    if is_missing(v):
        return None
    try:
        secs = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{str(v)[:40]!r} is not a Unix time") from None
    if not math.isfinite(secs) or not 0 <= secs < 1e11:
        raise ValueError(f"{v!r} is not a Unix time in seconds")
    return dt.datetime.fromtimestamp(secs, tz=dt.UTC).replace(tzinfo=None)


def _unix_ms(v: Any, o: Mapping[str, Any]) -> Any:
    if is_missing(v):
        return None
    try:
        return _unix_s(float(v) / 1000.0, o)
    except (TypeError, ValueError):
        raise ValueError(f"{str(v)[:40]!r} is not a Unix time in milliseconds") from None


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _number(v: Any, o: Mapping[str, Any]) -> Any:
    """The first number in a text such as ``"$1,299.00"`` (None when there is none)."""
    if is_missing(v) or isinstance(v, (int, float)):
        return v
    m = _NUMBER.search(str(v))
    return float(m.group(0).replace(",", "")) if m else None


_TAG = re.compile(r"<[^>]+>")


def _strip_html(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, str):
        return re.sub(r"\s+", " ", html.unescape(_TAG.sub(" ", v))).strip()
    return v


def _slug(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, str):
        return re.sub(r"[^a-z0-9]+", "-", v.lower()).strip("-") or None
    if isinstance(v, list):
        return [_slug(x, o) for x in v]
    return v


def _as_text(v: Any) -> str:
    """A value as key text: an integral float (an id column with gaps) loses its ``.0``."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _prefix(v: Any, o: Mapping[str, Any]) -> Any:
    pre = str(o.get("prefix", ""))
    if isinstance(v, list):
        return [pre + _as_text(x) for x in v if not is_missing(x)]
    return None if is_missing(v) else pre + _as_text(v)


def _stem(v: Any, o: Mapping[str, Any]) -> Any:
    return Path(str(v)).stem if not is_missing(v) else v


def _upper_first(v: Any, o: Mapping[str, Any]) -> Any:
    return v[:1].upper() + v[1:] if isinstance(v, str) else v


def _nonempty_list(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return [x for x in v if not is_missing(x)] or None
    return v


def _field_of(v: Any, o: Mapping[str, Any]) -> Any:
    """Part ``index`` (0-based) of a text split by ``sep``."""
    if not isinstance(v, str):
        return v
    parts = [p.strip() for p in v.split(str(o.get("sep", "-")))]
    idx = int(o.get("index", 0))
    return parts[idx] if -len(parts) <= idx < len(parts) and parts[idx] else None


def _digest(v: Any, o: Mapping[str, Any]) -> Any:
    """A short stable id for a value: the first 16 hex digits of its SHA-1."""
    import hashlib  # local: this section only adds transforms

    if is_missing(v):
        return None
    return hashlib.sha1(str(v).encode("utf-8")).hexdigest()[:16]


def _item(v: Any, o: Mapping[str, Any]) -> Any:
    """Element ``index`` (0-based) of a list; None when the list is shorter."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        return v
    items = [x for x in v if not is_missing(x)]
    idx = int(o.get("index", 0))
    return items[idx] if -len(items) <= idx < len(items) else None


def _head(v: Any, o: Mapping[str, Any]) -> Any:
    """The first ``index`` elements of a list, or parts of a text split by ``sep`` (joined again
    by ``sep``): a path of that many levels. None when there are fewer."""
    n = int(o.get("index", 1))
    if isinstance(v, str):
        sep = str(o.get("sep", "-"))
        parts = [p.strip() for p in v.split(sep) if p.strip()]
        return sep.join(parts[:n]) if len(parts) >= n else None
    if isinstance(v, (list, tuple)):
        items = [x for x in v if not is_missing(x)]
        return items[:n] if len(items) >= n else None
    return v


_TRUE_FLAGS = {"1", "1.0", "true", "t", "yes", "y"}


def _flags(v: Any, o: Mapping[str, Any]) -> Any:
    """The names whose flag is set in a text of ``name=value`` pairs split by ``sep`` (``,``),
    e.g. a template over 0/1 columns such as ``"Action={Action},Drama={Drama}"``."""
    if not isinstance(v, str):
        return v
    names = []
    for pair in v.split(str(o.get("sep", ","))):
        name, _, flag = pair.rpartition("=")
        if name.strip() and flag.strip().lower() in _TRUE_FLAGS:
            names.append(name.strip())
    return names or None


def _lead(v: Any, o: Mapping[str, Any]) -> Any:
    """The text before the first match of the regular expression ``sep``, or its first word
    when there is no match (a brand at the start of a title, up to a word such as "Men")."""
    if not isinstance(v, str):
        return v
    text = re.sub(r"\s+", " ", v).strip()
    m = re.search(str(o.get("sep", r"\s")), text)
    head = text[: m.start()].strip() if m else ""
    return head or (text.split(" ", 1)[0] if text else None)


def _plain_text(v: str) -> str:
    text = html.unescape(html.unescape(v)).replace("\u2019", "'").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


_LEGAL_FORM = (
    r"(?:Inc|Incorporated|Co|Corp|Corporation|Company|Ltd|Limited|LLC|L\.L\.C|LP|L\.P|GmbH|AG|"
    r"S\.A|S\.p\.A|PLC|N\.V|B\.V)"
)
_COMPANY_SPLIT = re.compile(r";\s*(?:and\s+)?|,\s+and\s+(?=[A-Z])")
_COMPANY_LABEL = re.compile(r"^[A-Z][A-Za-z ]{0,30}:\s*")
_COMPANY_ADDRESS_AFTER_FORM = re.compile(
    rf"^(.+?\b{_LEGAL_FORM}\b\.?)(?:,?\s+{_LEGAL_FORM}\b\.?)*,\s", re.I
)
_COMPANY_FORM_OF = re.compile(rf"^(.+?\b{_LEGAL_FORM}\b\.?)\s+of\s", re.I)
_COMPANY_TAIL = re.compile(
    r",\s+(?:a|an|now|owner|until|previously)\s|,?\s+(?:dba|d/b/a|on behalf)\b|\s+\(", re.I
)
_LEGAL_TAIL = re.compile(rf"(?:,?\s+{_LEGAL_FORM}\b\.?)+$", re.I)
_SENTENCE_VERB = re.compile(r"\b(?:was|were|is|are|has|have|had)\b")


def _company_name(part: str) -> str | None:
    part = _COMPANY_LABEL.sub("", part.strip(' "'))
    if ", of " in part:
        part = part.split(", of ", 1)[0]
        m = _COMPANY_FORM_OF.match(part)
        part = m.group(1) if m else part
    elif " of " in part:
        part = part.split(" of ", 1)[0]
    else:
        m = _COMPANY_ADDRESS_AFTER_FORM.match(part)
        part = m.group(1) if m else part
    part = _COMPANY_TAIL.split(part, 1)[0].strip(' ,;."')
    name = _LEGAL_TAIL.sub("", part).strip(' ,;."') or part
    name = re.sub(r"^The\s+", "", name)
    if not name or _SENTENCE_VERB.search(name):
        return None
    return name


def _companies(v: Any, o: Mapping[str, Any]) -> Any:
    """Company names in a field naming one or more firms with their addresses, as in CPSC
    recalls: ``"Secop GmbH, of Germany; and True Manufacturing Co. Inc., of O'Fallon, Missouri"``
    gives ``["Secop", "True Manufacturing"]``. Firms are split at ``;`` and ``, and``; the
    address (``, of ...``), ``d/b/a`` and ``a division of`` tails, legal forms (Inc., Corp., LLC)
    and a leading "The" are dropped, so spellings of one firm share a slug."""
    if not isinstance(v, str):
        return v
    names: list[str] = []
    for part in _COMPANY_SPLIT.split(_plain_text(v)):
        name = _company_name(part)
        if name and name not in names:
            names.append(name)
    return names or None


# "Sold at" prose: where a list of retailer names ends, and the phrases that start one.
_SALE_END = re.compile(
    r"\b(?:from|between|for|sold|in|on|online|through|via|who|to|with|as well as|beginning|"
    r"during|since|under|at|by|nationwide|and other|other)\b|(?<=[a-z0-9]{2})\.(?:\s|$)|[();:]",
    re.I,
)
_SALE_INTRO = re.compile(
    r"\b(?:including|such as|exclusively at|exclusively through|sold at|sold by)\s+", re.I
)
_SALE_GENERIC = re.compile(
    r"\s*\b(?:stores?|outlets?|retailers?|catalogs?|websites?|locations?|dealers?|"
    r"distributors?)$",
    re.I,
)
_NAME_SMALL_WORDS = {"of", "and", "&", "la", "le", "de", "du", "des", "the", "n", "'n", "by"}
_NOT_RETAILERS = {
    "department", "departments", "appliance", "appliances", "online", "internet", "retail",
    "directly", "distributors", "exclusively", "through", "major", "independent", "specialty",
    "home", "discount", "mass", "drug", "club", "gourmet", "toy", "sporting", "plumbers",
    "kitchen", "kitchens", "television", "approximately", "grocery", "fast-food", "original",
    "coffee", "bottled", "boat", "gas", "outdoor", "model", "given", "the", "there", "these",
    "this", "national", "various", "dealers", "hardware", "electronics", "warehouse", "catalog",
    "catalogs", "mail", "drugstores", "supermarkets", "convenience", "commercial", "authorized",
    "builders", "homebuilders", "restaurants", "hotel", "military", "midwest", "web",
    "websites", "retailers", "stores", "us", "u.s.", "usa", "canada", "co", "inc", "studio",
}  # fmt: skip
_MONTH = re.compile(
    r"^(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\b"
)


def _retailer_names(segment: str) -> list[str]:
    m = _SALE_END.search(segment)
    segment = segment[: m.start()] if m else segment
    names = []
    for piece in re.split(r",|\band\b|/", segment):
        piece = piece.strip(" .'\"")
        while (shorter := _SALE_GENERIC.sub("", piece).strip(" ,")) != piece:
            piece = shorter
        words = piece.split()
        if not words or len(words) > 5:
            continue
        if any(w[0].islower() and w.lower() not in _NAME_SMALL_WORDS for w in words):
            continue  # a description ("home appliance stores"), not a name
        if piece.lower() in _NOT_RETAILERS or (
            len(words) == 1 and words[0].lower() in _NOT_RETAILERS
        ):
            continue
        if _MONTH.match(piece) or any(w.isdigit() for w in words) or "$" in piece:
            continue
        if re.search(r"\.(?:com|net|org|us|ca)\b|^www\.", piece, re.I):
            continue  # web sites are not named as retailers
        piece = re.sub(r"^The\s+", "", _LEGAL_TAIL.sub("", piece))
        if piece:
            names.append(piece)
    return names


def _retailers(v: Any, o: Mapping[str, Any]) -> Any:
    """Store names in a "sold at" sentence, as in CPSC recalls: ``"Best Buy, Costco, The Home
    Depot and other stores nationwide and online at LG.com from 2015 ..."`` gives ``["Best Buy",
    "Costco", "Home Depot"]``. Names are taken from the start of the sentence and after
    "including" or "such as", up to words such as "from", "nationwide" or "online"; pieces that
    are not capitalised names (``"home appliance stores"``), dates, prices and web sites are
    dropped. A heuristic: a name with "and" in it ("Crate and Barrel") is split."""
    if not isinstance(v, str):
        return v
    text = _plain_text(v)
    names: list[str] = []
    for segment in [text, *(text[m.end() :] for m in _SALE_INTRO.finditer(text))]:
        for name in _retailer_names(segment):
            if name not in names:
                names.append(name)
    return names or None


#: Named transforms a mapping field can apply, in order. Each takes the value and the field's
#: options; a transform raising ValueError rejects the row with that reason.
TRANSFORMS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "strip": _strip,
    "lower": _lower,
    "join": _join,
    "first": _first,
    "last": _last,
    "split": _split,
    "unix_s": _unix_s,
    "unix_ms": _unix_ms,
    "number": _number,
    "strip_html": _strip_html,
    "slug": _slug,
    "prefix": _prefix,
    "stem": _stem,
    "capitalize": _upper_first,
    "compact": _nonempty_list,
    "part": _field_of,
    "digest": _digest,
    "item": _item,
    "head": _head,
    "flags": _flags,
    "lead": _lead,
    "companies": _companies,
    "retailers": _retailers,
}

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
                parts[name] = _as_text(v)
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
    """The mappings shipped with graphfusion, by name."""
    return {p.stem: p for p in sorted(LOADERS_DIR.glob("*.yaml"))}


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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    options = {"delimiter": spec["delimiter"]} if "delimiter" in spec else {}
    return TableSpec(name, str(src), str(fmt), spec.get("file"), options)


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
