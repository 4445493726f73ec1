"""The graph schema: labels, relationship types, typed properties and vector features.

The schema lives in a YAML file (``graphfusion/definitions/schema/ecommerce.yaml`` by
default) and is the single source of truth for every label, relationship type, key,
constraint and vector index. Stores generate their DDL from it, and Cypher written by
graphfusion takes labels and types only from it, never from user input.

Example:
    >>> from graphfusion.schema import load_schema
    >>> schema = load_schema()
    >>> schema.node("Product").prop("text_vec").dim
    384
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graphfusion.errors import SchemaError

__all__ = [
    "PropertyType",
    "Property",
    "NodeType",
    "RelType",
    "Schema",
    "load_schema",
    "default_schema_path",
    "load_yaml",
    "union_properties",
]

#: Identifier rule for labels, relationship types and property names. Anything that reaches a
#: Cypher string as an identifier must match it whole (``fullmatch``; ``\Z``, not ``$``, which
#: lets a trailing newline through).
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")

#: Words LadybugDB's parser takes only as words of Cypher (any case), never as a label,
#: relationship type or property name (found by trying each in the statements the stores send,
#: ladybug 0.22.0): a schema that uses one is refused, where the store would fail on open.
RESERVED_WORDS = frozenset(
    """ACYCLIC ALL AND ANY ASC ASCENDING CASE CAST COLUMN CREATE DBTYPE DEFAULT DESC DESCENDING
    DISTINCT ELSE END ENDS EXISTS FALSE FOR GLOB GROUP HEADERS IN INDEX INSTALL JOIN MACRO NONE
    NOT NULL ON ONLY OPTIONAL OPTIONS OR ORDER PRIMARY PROFILE SHORTEST SINGLE STARTS TABLE THEN
    TRAIL TRUE UNION UNWIND WHEN WHERE WITH XOR""".split()  # noqa: SIM905
)

#: Names a relationship property may not take (any case): the stores write a relationship's
#: ends as the columns ``src`` and ``dst``, and LadybugDB's bulk copy reads columns ``from`` and
#: ``to`` as the ends (ladybug 0.22.0): a property ``from`` was loaded with the start key, ``to``
#: and ``dst`` failed the load and ``src`` rejected every row.
END_COLUMNS = frozenset({"src", "dst", "from", "to"})

#: Folder of the data definitions shipped with the package (schema/ and loaders/).
DEFINITIONS = Path(__file__).resolve().parent / "definitions"

SCALAR_TYPES = ("string", "int", "float", "bool", "datetime")
LIST_TYPES = ("list[string]", "list[float]", "list[int]")
SIMILARITIES = ("cosine", "euclidean")
ENCODERS = ("text", "image", "behaviour", "model")

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(_YAML_LOADER):
    """The safe YAML loader (in C when PyYAML has it), refusing a key given twice in one
    mapping, which YAML would resolve by keeping the last in silence (``<<`` merges may still
    be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        first: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                continue
            line = key.start_mark.line + 1
            if (key.tag, key.value) in first:
                seen = first[(key.tag, key.value)]
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key.value!r} given twice (line {line}, first on line {seen})"
                )
            first[(key.tag, key.value)] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML text with the safe loader, in C (libyaml) when PyYAML was built with it,
    refusing a key given twice in one mapping (a schema or a loader mapping).

    Args:
        text: The YAML document.

    Returns:
        The plain Python data.

    Raises:
        yaml.YAMLError: If the text is not valid YAML, or gives a key twice.
    """
    return yaml.load(text, Loader=_StrictLoader)  # a safe loader


@dataclass(frozen=True)
class PropertyType:
    """A property's type.

    Attributes:
        name: One of ``string``, ``int``, ``float``, ``bool``, ``datetime``, ``list[string]``,
            ``list[float]``, ``list[int]`` or ``vector``.
        dim: Vector dimension (vectors only).
        similarity: ``cosine`` or ``euclidean`` (vectors only).
        encoder: What computes the vector: ``text``, ``image``, ``behaviour`` or ``model``
            (vectors only).
        inputs: The properties the encoder reads (``text`` and ``image`` vectors).
    """

    name: str
    dim: int | None = None
    similarity: str | None = None
    encoder: str | None = None
    inputs: tuple[str, ...] = ()

    @property
    def is_vector(self) -> bool:
        """Whether this is a vector feature."""
        return self.name == "vector"

    @property
    def is_list(self) -> bool:
        """Whether values are lists (vectors included)."""
        return self.is_vector or self.name.startswith("list[")

    @property
    def element(self) -> str | None:
        """The element type of a list (``float`` for vectors), else None."""
        if self.is_vector:
            return "float"
        if self.name.startswith("list["):
            return self.name[5:-1]
        return None


@dataclass(frozen=True)
class Property:
    """A typed property of a node label or relationship type.

    Attributes:
        name: The property's name.
        type: Its type.
        description: What it holds.
        union: Whether values accumulate (``merge: union`` in the schema, lists only): a
            write adds the elements that are not there yet, in order, and never removes one,
            where a write of any other property replaces the stored value. Several rows of one
            load that name the same node or relationship add up the same way.
        minimum: The smallest value allowed (``min`` in the schema, int and float properties
            only), as declared; None when there is no lower bound.
        maximum: The largest value allowed (``max`` in the schema), as declared; None when
            there is no upper bound. A loader rejects a row whose value is out of range
            (:func:`graphfusion.values.range_fault`).
    """

    name: str
    type: PropertyType
    description: str = ""
    union: bool = False
    minimum: int | float | None = None
    maximum: int | float | None = None

    @property
    def dim(self) -> int | None:
        """Vector dimension, or None for non-vector properties."""
        return self.type.dim


def union_properties(props: Iterable[Property]) -> frozenset[str]:
    """The names of the ``merge: union`` properties among ``props`` (a label's or a
    relationship type's ``properties``)."""
    return frozenset(p.name for p in props if p.union)


@dataclass(frozen=True)
class NodeType:
    """A node label with its key and typed properties."""

    label: str
    key: str
    properties: tuple[Property, ...]
    description: str = ""

    def prop(self, name: str) -> Property:
        """Return the property called ``name``.

        Raises:
            SchemaError: If the label has no such property.
        """
        for prop in self.properties:
            if prop.name == name:
                return prop
        raise SchemaError(
            f"label {self.label!r} has no property {name!r}; "
            f"it has: {', '.join(p.name for p in self.properties)}"
        )

    def has_property(self, name: str) -> bool:
        """Whether the label declares ``name``."""
        return any(p.name == name for p in self.properties)

    @property
    def vectors(self) -> tuple[Property, ...]:
        """The vector properties of the label."""
        return tuple(p for p in self.properties if p.type.is_vector)


@dataclass(frozen=True)
class RelType:
    """A relationship type, the (start label, end label) pairs it connects, its properties."""

    type: str
    between: tuple[tuple[str, str], ...]
    properties: tuple[Property, ...] = ()
    description: str = ""

    def prop(self, name: str) -> Property:
        """Return the property called ``name``.

        Raises:
            SchemaError: If the relationship type has no such property.
        """
        for prop in self.properties:
            if prop.name == name:
                return prop
        have = ", ".join(p.name for p in self.properties) or "none"
        raise SchemaError(f"relationship {self.type!r} has no property {name!r}; it has: {have}")

    def has_property(self, name: str) -> bool:
        """Whether the relationship type declares ``name``."""
        return any(p.name == name for p in self.properties)

    def connects(self, start: str, end: str) -> bool:
        """Whether ``(start)-[:TYPE]->(end)`` is allowed."""
        return (start, end) in self.between


@dataclass(frozen=True)
class Schema:
    """A parsed, validated graph schema."""

    name: str
    version: int
    nodes: Mapping[str, NodeType]
    relationships: Mapping[str, RelType]
    source: str = "<memory>"
    digest: str = field(default="", compare=False)
    #: The mapping it was parsed from (what a store keeps of a schema of one's own).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def node(self, label: str) -> NodeType:
        """Return the node type for ``label``.

        Raises:
            SchemaError: If ``label`` is not in the schema.
        """
        try:
            return self.nodes[label]
        except (KeyError, TypeError):
            raise SchemaError(
                f"unknown node label {label!r}; the schema has: {', '.join(self.nodes)}"
            ) from None

    def rel(self, rel_type: str) -> RelType:
        """Return the relationship type ``rel_type``.

        Raises:
            SchemaError: If ``rel_type`` is not in the schema.
        """
        try:
            return self.relationships[rel_type]
        except (KeyError, TypeError):
            raise SchemaError(
                f"unknown relationship type {rel_type!r}; "
                f"the schema has: {', '.join(self.relationships)}"
            ) from None

    def require(
        self,
        purpose: str,
        nodes: Iterable[str] = (),
        relationships: Iterable[str] = (),
        properties: Iterable[str] = (),
    ) -> None:
        """Refuse ``purpose`` (an application that reads these labels, types and properties)
        on a schema that lacks some of them, before a query fails on a table or a property
        that does not exist.

        Args:
            purpose: What needs them, as the message begins (``"training on VIEWED"``).
            nodes: Labels it reads.
            relationships: Relationship types it reads.
            properties: Properties it reads, as ``Label.property`` or ``TYPE.property``
                (one of a label or type that is missing is not named again).

        Raises:
            SchemaError: Naming every label, type and property the schema lacks, and the
                schema's file.
            ValueError: A property not named ``Label.property`` (a caller's mistake).
        """
        missing = [n for n in nodes if n not in self.nodes]
        missing += [r for r in relationships if r not in self.relationships]
        missing += self._missing_properties(properties, skip=missing)
        if missing:
            raise SchemaError(
                f"{purpose} needs what the schema {self.name!r} ({self.source}) lacks: "
                f"{', '.join(missing)} (it reads the graph of the built-in e-commerce schema)"
            )

    def _missing_properties(self, properties: Iterable[str], skip: Iterable[str]) -> list[str]:
        """The ``Label.property`` names among ``properties`` that the schema lacks, leaving
        out those of a label or type in ``skip`` (named missing already)."""
        gone, out = set(skip), []
        for name in properties:
            owner, _, prop = name.partition(".")
            if not owner or not prop or "." in prop:
                raise ValueError(f"a required property is named Label.property, got {name!r}")
            if owner in gone:
                continue
            holder = self.nodes.get(owner) or self.relationships.get(owner)
            if holder is None or not holder.has_property(prop):
                out.append(name)
        return out

    def rel_pairs(self) -> Iterator[tuple[str, str, str]]:
        """Yield every ``(type, start label, end label)`` triple."""
        for rel in self.relationships.values():
            for start, end in rel.between:
                yield rel.type, start, end

    def vector_properties(self) -> Iterator[tuple[str, Property]]:
        """Yield ``(label, property)`` for every vector property."""
        for node in self.nodes.values():
            for prop in node.vectors:
                yield node.label, prop


def default_schema_path() -> Path:
    """Path of the built-in e-commerce schema shipped with the package."""
    return DEFINITIONS / "schema" / "ecommerce.yaml"


def load_schema(path: str | Path | None = None) -> Schema:
    """Read and validate a schema file.

    Args:
        path: A YAML schema file; the built-in e-commerce schema when None.

    Returns:
        The parsed schema.

    Raises:
        SchemaError: If the file is missing, is not YAML, or breaks a rule; the message names
            the place (file and the label, relationship or property at fault).
    """
    src = Path(path) if path is not None else default_schema_path()
    try:
        text = src.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"{src}: cannot read schema file: {exc.strerror or exc}") from exc
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise SchemaError(f"{src}: not valid YAML: {exc}") from exc
    schema = parse_schema(raw, source=str(src))
    return schema


def parse_schema(raw: Any, source: str = "<memory>") -> Schema:
    """Validate a schema given as plain Python data (as read from YAML).

    Args:
        raw: The mapping with ``nodes`` and ``relationships``.
        source: Where it came from, for error messages.

    Returns:
        The parsed schema.

    Raises:
        SchemaError: On any rule broken, naming the place.
    """
    if not isinstance(raw, dict):
        raise SchemaError(f"{source}: a schema must be a mapping with 'nodes' and 'relationships'")
    unknown = set(raw) - {"version", "name", "nodes", "relationships", "description"}
    if unknown:
        raise SchemaError(f"{source}: unknown top-level keys: {', '.join(sorted(unknown))}")
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise SchemaError(f"{source}: 'version' must be an integer")
    raw_nodes = raw.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise SchemaError(f"{source}: 'nodes' must be a non-empty mapping of label -> definition")
    nodes: dict[str, NodeType] = {}
    for label, spec in _names(raw_nodes, "label", f"{source}: nodes"):
        nodes[label] = _parse_node(label, spec, source)
    raw_rels = raw.get("relationships") or {}
    if not isinstance(raw_rels, dict):
        raise SchemaError(f"{source}: 'relationships' must be a mapping of type -> definition")
    rels: dict[str, RelType] = {}
    for rel_type, spec in _names(raw_rels, "relationship type", f"{source}: relationships"):
        rels[rel_type] = _parse_rel(rel_type, spec, nodes, source)
    clash = set(nodes) & set(rels)
    if clash:
        raise SchemaError(f"{source}: names used as both label and type: {', '.join(clash)}")
    _check_case([*nodes, *rels], "labels and relationship types", source)
    digest = hashlib.sha256(yaml.safe_dump(raw, sort_keys=True).encode()).hexdigest()[:16]
    return Schema(
        name=str(raw.get("name", "graph")),
        version=version,
        nodes=nodes,
        relationships=rels,
        source=source,
        digest=digest,
        raw=copy.deepcopy(raw),
    )


def _names(raw: Mapping[Any, Any], what: str, where: str) -> Iterator[tuple[str, Any]]:
    """The ``(name, definition)`` pairs of a mapping of labels, types or properties, refusing
    a name that YAML read as something else than text (unquoted ``yes``, ``no``, ``on``,
    ``off``, ``null``, numbers), which would otherwise be refused under a name the file does
    not hold (``property 'True' is a word of Cypher``)."""
    for name, spec in raw.items():
        if not isinstance(name, str):
            raise SchemaError(
                f"{where}: a {what} name that YAML read as {name!r} ({type(name).__name__}), "
                "not as text; quote it in the file"
            )
        yield name, spec


def _check_identifier(name: str, what: str, where: str) -> None:
    if not IDENTIFIER.match(name):
        raise SchemaError(
            f"{where}: {what} {name!r} is not a valid identifier "
            "(letters, digits and '_', starting with a letter)"
        )
    if name.upper() in RESERVED_WORDS:
        raise SchemaError(
            f"{where}: {what} {name!r} is a word of Cypher, which the embedded store cannot "
            "take as a name; choose another"
        )


def _check_case(names: Iterable[str], what: str, where: str) -> None:
    """Refuse names that differ only in case: LadybugDB's names ignore case, so the second
    would be the first one's table or column."""
    seen: dict[str, str] = {}
    for name in names:
        first = seen.setdefault(name.lower(), name)
        if first != name:
            raise SchemaError(f"{where}: {what} differ only in case: {first}, {name}")


def _parse_type(raw: Any, where: str) -> PropertyType:
    if isinstance(raw, str):
        name = raw.strip()
        if name in SCALAR_TYPES or name in LIST_TYPES:
            return PropertyType(name)
        if name == "vector":
            raise SchemaError(f"{where}: a vector needs a dimension: {{type: vector, dim: N}}")
        raise SchemaError(
            f"{where}: unknown type {name!r}; use one of "
            f"{', '.join(SCALAR_TYPES + LIST_TYPES)} or {{type: vector, dim: N}}"
        )
    if isinstance(raw, dict):
        unknown = set(raw) - {"type", "dim", "similarity", "description", "encoder", "from"}
        if unknown:
            raise SchemaError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        tname = raw.get("type")
        if not isinstance(tname, str):
            raise SchemaError(f"{where}: a property type must be a name, got {tname!r}")
        if tname != "vector":
            base = _parse_type(tname, where)
            if set(raw) & {"dim", "similarity", "encoder", "from"}:
                raise SchemaError(
                    f"{where}: 'dim', 'similarity', 'encoder' and 'from' apply to vectors only"
                )
            return base
        dim = raw.get("dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 4096:
            raise SchemaError(f"{where}: vector 'dim' must be an integer in 1..4096, got {dim!r}")
        sim = raw.get("similarity", "cosine")
        if sim not in SIMILARITIES:
            raise SchemaError(f"{where}: similarity must be one of {SIMILARITIES}, got {sim!r}")
        encoder = raw.get("encoder")
        if encoder is not None and encoder not in ENCODERS:
            raise SchemaError(f"{where}: encoder must be one of {ENCODERS}, got {encoder!r}")
        inputs = _parse_inputs(raw.get("from"), encoder, where)
        return PropertyType("vector", dim=dim, similarity=sim, encoder=encoder, inputs=inputs)
    raise SchemaError(f"{where}: a property type must be a name or a mapping, got {raw!r}")


def _parse_inputs(raw: Any, encoder: str | None, where: str) -> tuple[str, ...]:
    """A vector's ``from``: the properties a text or image encoder reads (required of those,
    refused elsewhere, where nothing would read it)."""
    inputs = [raw] if isinstance(raw, str) else raw or []
    if not isinstance(inputs, list):
        raise SchemaError(f"{where}: 'from' must be a property name or a list of them")
    if inputs and encoder not in ("text", "image"):
        raise SchemaError(
            f"{where}: 'from' applies to text and image vectors only "
            f"(encoder: text or image), not to encoder {encoder!r}"
        )
    if encoder in ("text", "image") and not inputs:
        raise SchemaError(f"{where}: a {encoder} vector needs 'from': the properties it reads")
    return tuple(map(str, inputs))


#: Range of a 64-bit integer: the bounds of an int property must lie in it.
_INT64 = (-(2**63), 2**63 - 1)


def _parse_bound(raw: Any, key: str, ptype: PropertyType, where: str) -> int | float:
    """A property's ``min`` or ``max``: a finite number; an integer (in the 64-bit range) on
    an int property."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise SchemaError(f"{where}: {key!r} must be a number, got {raw!r}")
    if not math.isfinite(raw):
        raise SchemaError(f"{where}: {key!r} must be a finite number, got {raw!r}")
    if ptype.name == "int" and not (isinstance(raw, int) and _INT64[0] <= raw <= _INT64[1]):
        raise SchemaError(
            f"{where}: {key!r} of an int property must be a 64-bit integer, got {raw!r}"
        )
    return raw


def _parse_range(
    bounds: Mapping[str, Any], ptype: PropertyType, where: str
) -> tuple[int | float | None, int | float | None]:
    """The ``min`` and ``max`` a property declares (None for one it does not)."""
    if not bounds:
        return None, None
    if ptype.name not in ("int", "float"):
        raise SchemaError(
            f"{where}: 'min' and 'max' apply to int and float properties only, not to {ptype.name}"
        )
    low = _parse_bound(bounds["min"], "min", ptype, where) if "min" in bounds else None
    high = _parse_bound(bounds["max"], "max", ptype, where) if "max" in bounds else None
    if low is not None and high is not None and low > high:
        raise SchemaError(f"{where}: 'min' ({low!r}) is greater than 'max' ({high!r})")
    return low, high


def _parse_properties(raw: Any, where: str) -> tuple[Property, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: 'properties' must be a mapping of name -> type")
    props = []
    for name, traw in _names(raw, "property", where):
        pwhere = f"{where}.{name}"
        _check_identifier(name, "property", pwhere)
        union = False
        bounds: dict[str, Any] = {}
        if isinstance(traw, dict):
            traw = dict(traw)
            merge = traw.pop("merge", None)
            if merge not in (None, "union"):
                raise SchemaError(f"{pwhere}: 'merge' can only be 'union', got {merge!r}")
            union = merge == "union"
            bounds = {k: traw.pop(k) for k in ("min", "max") if k in traw}
        desc = traw.get("description", "") if isinstance(traw, dict) else ""
        ptype = _parse_type(traw, pwhere)
        if union and (not ptype.is_list or ptype.is_vector):
            raise SchemaError(f"{pwhere}: 'merge: union' applies to list properties only")
        low, high = _parse_range(bounds, ptype, pwhere)
        props.append(Property(name, ptype, str(desc), union, low, high))
    _check_case((p.name for p in props), "property names", where)
    return tuple(props)


def _parse_node(label: str, spec: Any, source: str) -> NodeType:
    where = f"{source}: nodes.{label}"
    _check_identifier(label, "label", where)
    if not isinstance(spec, dict):
        raise SchemaError(f"{where}: a node definition must be a mapping")
    unknown = set(spec) - {"key", "properties", "description"}
    if unknown:
        raise SchemaError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    props = _parse_properties(spec.get("properties"), where)
    key = spec.get("key")
    if not isinstance(key, str):
        raise SchemaError(f"{where}: 'key' (the key property's name) is required")
    by_name = {p.name: p for p in props}
    for prop in props:
        for src in prop.type.inputs:
            if src not in by_name or by_name[src].type.name != "string":
                raise SchemaError(
                    f"{where}.{prop.name}: 'from' names {src!r}, which is not a string "
                    "property of the label"
                )
    if key not in by_name:
        raise SchemaError(f"{where}: key property {key!r} is not among its properties")
    if by_name[key].type.name != "string":
        raise SchemaError(f"{where}: key property {key!r} must be a string")
    return NodeType(label, key, props, str(spec.get("description", "")))


def _parse_rel(rel_type: str, spec: Any, nodes: Mapping[str, NodeType], source: str) -> RelType:
    where = f"{source}: relationships.{rel_type}"
    _check_identifier(rel_type, "relationship type", where)
    if not isinstance(spec, dict):
        raise SchemaError(f"{where}: a relationship definition must be a mapping")
    unknown = set(spec) - {"between", "properties", "description"}
    if unknown:
        raise SchemaError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    between = spec.get("between")
    if not isinstance(between, list) or not between:
        raise SchemaError(f"{where}: 'between' must list [start label, end label] pairs")
    pairs: list[tuple[str, str]] = []
    for pair in between:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise SchemaError(f"{where}: each 'between' entry must be [start, end], got {pair!r}")
        for end in pair:
            if not isinstance(end, str) or end not in nodes:
                raise SchemaError(f"{where}: end label {end!r} is not a node label of the schema")
        pairs.append((str(pair[0]), str(pair[1])))
    if len(set(pairs)) != len(pairs):
        raise SchemaError(f"{where}: a [start, end] pair is listed twice")
    props = _parse_properties(spec.get("properties"), where)
    if any(p.type.is_vector for p in props):
        raise SchemaError(f"{where}: relationships cannot carry vector properties")
    for prop in props:
        if prop.name.lower() in END_COLUMNS:
            raise SchemaError(
                f"{where}.{prop.name}: {prop.name!r} is the store's own name for a "
                f"relationship's end ({', '.join(sorted(END_COLUMNS))}, in any case); "
                "choose another"
            )
    return RelType(rel_type, tuple(pairs), props, str(spec.get("description", "")))
