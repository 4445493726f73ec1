"""Cypher that both stores share, written once.

Labels, relationship types and property names reach these strings only after they were
looked up in the schema (:class:`graphfusion.schema.Schema`); every value is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphfusion.schema import NodeType, RelType

__all__ = [
    "count_nodes",
    "count_rels",
    "count_rels_between",
    "existing_keys",
    "merge_nodes",
    "merge_rels",
    "delete_nodes",
]


def _sets(var: str, props: Sequence[str]) -> str:
    # coalesce keeps what is stored when the new value is null: a source that lacks a
    # property never erases what another source wrote.
    if not props:
        return ""
    return " SET " + ", ".join(f"{var}.{p} = coalesce(r.{p}, {var}.{p})" for p in props)


def count_nodes(node: NodeType) -> str:
    """Number of nodes of a label, as column ``count``."""
    return f"MATCH (n:{node.label}) RETURN count(n) AS count"


def count_rels(rel: RelType) -> str:
    """Number of relationships of a type, as column ``count``."""
    return f"MATCH ()-[r:{rel.type}]->() RETURN count(r) AS count"


def count_rels_between(rel: RelType, start: NodeType, end: NodeType) -> str:
    """Number of relationships of a type between two labels, as column ``count``."""
    return f"MATCH (:{start.label})-[r:{rel.type}]->(:{end.label}) RETURN count(r) AS count"


def existing_keys(node: NodeType) -> str:
    """Which of ``$keys`` exist as nodes of the label, as column ``key``."""
    return f"UNWIND $keys AS k MATCH (n:{node.label} {{{node.key}: k}}) RETURN n.{node.key} AS key"


def merge_nodes(node: NodeType, props: Sequence[str]) -> str:
    """Upsert ``$rows`` (maps with the key and ``props``) as nodes of the label."""
    return f"UNWIND $rows AS r MERGE (n:{node.label} {{{node.key}: r.{node.key}}})" + _sets(
        "n", props
    )


def _match_ends(start: NodeType, end: NodeType) -> str:
    # Two MATCH clauses, never a comma-joined pattern: LadybugDB scans whole tables for the
    # latter (about 100x slower).
    return (
        f"UNWIND $rows AS r MATCH (a:{start.label} {{{start.key}: r.src}}) "
        f"MATCH (b:{end.label} {{{end.key}: r.dst}}) "
    )


def merge_rels(rel: RelType, start: NodeType, end: NodeType, props: Sequence[str]) -> str:
    """Upsert ``$rows`` (maps with ``src``, ``dst`` and ``props``) as relationships."""
    return _match_ends(start, end) + f"MERGE (a)-[e:{rel.type}]->(b)" + _sets("e", props)


def delete_nodes(node: NodeType) -> str:
    """Delete every node of a label with its relationships."""
    return f"MATCH (n:{node.label}) DETACH DELETE n"
