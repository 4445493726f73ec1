"""The differences between the Cypher dialects of the stores, in one place.

Everything else graphfusion sends is written once (see :mod:`graphfusion.store.cypher`).
Here live only the things LadybugDB and Neo4j spell differently: schema DDL, the function
that names a relationship's type, and vector similarity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from graphfusion.errors import SchemaError, StoreError
from graphfusion.schema import NodeType, Property, PropertyType, RelType, Schema
from graphfusion.values import arrow_type

__all__ = [
    "Dialect",
    "LADYBUG",
    "NEO4J",
    "SHOW_INDEXES",
    "index_name",
    "ladybug_arrow_type",
    "vector_index_faults",
]

#: Neo4j's index catalogue, as :func:`vector_index_faults` reads it.
SHOW_INDEXES = "SHOW INDEXES YIELD name, type, labelsOrTypes, properties, options"

_LADYBUG_TYPES = {
    "string": "STRING",
    "int": "INT64",
    "float": "DOUBLE",
    "bool": "BOOL",
    "datetime": "TIMESTAMP",
    "list[string]": "STRING[]",
    "list[float]": "DOUBLE[]",
    "list[int]": "INT64[]",
    # FLOAT[N] columns crashed LadybugDB's PyG backend; vectors are variable-length FLOAT[].
    "vector": "FLOAT[]",
}


def ladybug_arrow_type(column_type: str) -> pa.DataType:
    """The Arrow type of a LadybugDB column type that the schema's types map to (``STRING[]``:
    a list of strings).

    Raises:
        StoreError: A column type no schema type maps to.
    """
    for name, spelled in _LADYBUG_TYPES.items():
        if spelled == column_type:
            return arrow_type(PropertyType(name))
    raise StoreError(f"the store has a column of type {column_type}, which no schema type maps to")


def index_name(label: str, prop: str) -> str:
    """Name of the index or constraint on ``label.prop`` (e.g. ``product_text_vec``)."""
    return f"{label.lower()}_{prop}"


def _target(row: Mapping[str, Any]) -> str:
    """``Label(prop, ...)`` of a ``SHOW INDEXES`` row."""
    labels = ", ".join(str(x) for x in row.get("labelsOrTypes") or ()) or "any label"
    return f"{labels}({', '.join(str(x) for x in row.get('properties') or ())})"


def _config(dim: Any, similarity: Any) -> str:
    """``384 dimensions and cosine similarity``."""
    return f"{dim} dimensions and {str(similarity).lower()} similarity"


def _vector_fault(label: str, prop: Property, rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Why Neo4j's indexes (``SHOW INDEXES`` rows) lack the vector index of ``label.prop`` as
    the schema makes it, or None."""
    name, where = index_name(label, prop.name), f"{label}.{prop.name}"
    drop = "drop it (DROP INDEX {}) and connect again to have the schema's made"
    named = next((r for r in rows if r.get("name") == name), None)
    if named is None:
        other = next(
            (r for r in rows if r.get("type") == "VECTOR"
             and list(r.get("labelsOrTypes") or ()) == [label]
             and list(r.get("properties") or ()) == [prop.name]),
            None,
        )  # fmt: skip
        if other is None:
            return f"{where}: Neo4j has no vector index {name!r} (its creation did nothing)"
        return (
            f"{where}: Neo4j's vector index {other['name']!r} indexes it already, so "
            f"{name!r}, which graphfusion searches, was not made (one vector index per "
            f"property); {drop.format(other['name'])}"
        )
    if named.get("type") != "VECTOR" or _target(named) != f"{label}({prop.name})":
        return (
            f"{where}: the name {name!r} is the {named.get('type')} index on "
            f"{_target(named)}, so the vector index was not made; {drop.format(name)}"
        )
    config = (named.get("options") or {}).get("indexConfig") or {}
    dim, sim = config.get("vector.dimensions"), config.get("vector.similarity_function")
    if (dim is not None and int(dim) != prop.type.dim) or (
        sim is not None and str(sim).lower() != prop.type.similarity
    ):
        return (
            f"{where}: Neo4j's vector index {name!r} has {_config(dim, sim)}, the schema "
            f"{_config(prop.type.dim, prop.type.similarity)}; {drop.format(name)} (then embed "
            "or train again if the size changed)"
        )
    return None


def vector_index_faults(schema: Schema, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What differs between the schema's vector indexes and Neo4j's (the rows of
    :data:`SHOW_INDEXES`): ``CREATE VECTOR INDEX ... IF NOT EXISTS`` does nothing where an
    index of that name, or another vector index on the property, is there already, so an
    index of an earlier schema (another size or similarity) or of another tool stays, and
    the searches ran on it, or on no index at all.

    Returns:
        One line per vector property whose index is missing or differs; empty when all are
        as the schema says (a similarity in capitals, as Neo4j shows it, is the same).
    """
    faults = (_vector_fault(label, prop, rows) for label, prop in schema.vector_properties())
    return [fault for fault in faults if fault is not None]


@dataclass(frozen=True)
class Dialect:
    """How one store spells the statements that differ.

    Attributes:
        name: ``ladybug`` or ``neo4j``.
    """

    name: str

    def column_type(self, prop: Property) -> str:
        """The store's column type for ``prop`` (LadybugDB only; Neo4j is schemaless)."""
        return _LADYBUG_TYPES[prop.type.name]

    def node_table_ddl(self, node: NodeType) -> str:
        """``CREATE NODE TABLE`` for a label (LadybugDB)."""
        cols = ", ".join(
            f"{p.name} {self.column_type(p)}" + (" PRIMARY KEY" if p.name == node.key else "")
            for p in node.properties
        )
        return f"CREATE NODE TABLE IF NOT EXISTS {node.label}({cols})"

    def rel_table_ddl(self, rel: RelType) -> str:
        """``CREATE REL TABLE`` for a relationship type (LadybugDB)."""
        parts = [f"FROM {a} TO {b}" for a, b in rel.between]
        parts += [f"{p.name} {self.column_type(p)}" for p in rel.properties]
        return f"CREATE REL TABLE IF NOT EXISTS {rel.type}({', '.join(parts)})"

    def add_rel_pair_ddl(self, rel: RelType, start: str, end: str) -> str:
        """``ALTER TABLE ... ADD FROM ... TO ...`` for a (start, end) pair added to a
        relationship type later (LadybugDB)."""
        return f"ALTER TABLE {rel.type} ADD IF NOT EXISTS FROM {start} TO {end}"

    def add_column_ddl(self, table: str, prop: Property) -> str:
        """``ALTER TABLE ... ADD`` for a property added to the schema later (LadybugDB)."""
        return f"ALTER TABLE {table} ADD IF NOT EXISTS {prop.name} {self.column_type(prop)}"

    def constraint_ddl(self, node: NodeType) -> str:
        """Uniqueness constraint on a label's key (Neo4j)."""
        name = index_name(node.label, node.key) + "_unique"
        return (
            f"CREATE CONSTRAINT {name} IF NOT EXISTS "
            f"FOR (n:{node.label}) REQUIRE n.{node.key} IS UNIQUE"
        )

    def vector_index_ddl(self, label: str, prop: Property) -> str:
        """Vector index on ``label.prop`` (Neo4j 5)."""
        return (
            f"CREATE VECTOR INDEX {index_name(label, prop.name)} IF NOT EXISTS "
            f"FOR (n:{label}) ON (n.{prop.name}) OPTIONS {{indexConfig: {{"
            f"`vector.dimensions`: {prop.type.dim}, "
            f"`vector.similarity_function`: '{prop.type.similarity}'}}}}"
        )

    def check_names(self, schema: Schema) -> None:
        """Refuse a schema whose Neo4j constraint and vector index names clash (Neo4j):
        ``Product.text_vec`` and ``Product_text.vec`` both name ``product_text_vec``, and
        ``IF NOT EXISTS`` would skip the second, whose searches then ran on the first's label.

        Raises:
            SchemaError: Naming each clash and what shares the name.
        """
        owners: dict[str, list[str]] = {}
        for node in schema.nodes.values():
            name = index_name(node.label, node.key) + "_unique"
            owners.setdefault(name, []).append(f"the key of {node.label}")
        for label, prop in schema.vector_properties():
            owners.setdefault(index_name(label, prop.name), []).append(f"{label}.{prop.name}")
        clashes = [f"{name} ({' and '.join(who)})" for name, who in owners.items() if len(who) > 1]
        if clashes:
            raise SchemaError(
                f"{schema.source}: Neo4j index and constraint names clash: {'; '.join(clashes)}; "
                "rename a label or property"
            )

    def schema_ddl(self, schema: Schema) -> list[str]:
        """Every statement that creates the schema's tables, constraints and indexes."""
        if self.name == "ladybug":
            stmts = [self.node_table_ddl(n) for n in schema.nodes.values()]
            stmts += [self.rel_table_ddl(r) for r in schema.relationships.values()]
            return stmts
        stmts = [self.constraint_ddl(n) for n in schema.nodes.values()]
        stmts += [self.vector_index_ddl(label, p) for label, p in schema.vector_properties()]
        return stmts

    def rel_type_fn(self, var: str) -> str:
        """Expression naming the type of relationship variable ``var``."""
        return f"label({var})" if self.name == "ladybug" else f"type({var})"

    def cosine_similarity(self, left: str, right: str, dim: int) -> str:
        """Cosine similarity of two vector expressions, in [-1, 1] on both stores.

        LadybugDB needs fixed-size casts. Neo4j's ``vector.similarity.cosine`` is its cosine
        index's score, ``(1 + cosine) / 2`` in [0, 1] ("identical to those used by Neo4j's
        vector search indexes", the Cypher manual), so it is mapped back.
        """
        if self.name == "ladybug":
            return (
                f"array_cosine_similarity(CAST({left} AS FLOAT[{dim}]), "
                f"CAST({right} AS FLOAT[{dim}]))"
            )
        return f"(2 * vector.similarity.cosine({left}, {right}) - 1)"

    def nearest(self, label: str, prop: str, dim: int) -> str:
        """Candidates ``node`` of ``label`` with their cosine ``score`` to ``$vector``.

        LadybugDB scores every node with a vector (exact); Neo4j asks its vector index for the
        ``$k`` nearest (approximate, by the index's similarity function) and scores them by
        cosine similarity (:meth:`cosine_similarity`). (The index's own score is ``(1 +
        cosine) / 2`` for a cosine index but ``1 / (1 + d^2)`` for a ``euclidean`` one, so
        mapped back it was cosine for the first only.)
        """
        score = self.cosine_similarity(f"node.{prop}", "$vector", dim)
        if self.name == "ladybug":
            return f"MATCH (node:{label}) WHERE node.{prop} IS NOT NULL WITH node, {score} AS score"
        return (
            f"CALL db.index.vector.queryNodes('{index_name(label, prop)}', $k, $vector) "
            f"YIELD node WITH node, {score} AS score"
        )


LADYBUG = Dialect("ladybug")
NEO4J = Dialect("neo4j")
