"""Neo4j's own parser on the Cypher of every schema feature the earlier lint did not drive:
vector writes, union lists on nodes, the HeteroData export's reads, vector searches and
cosine similarity on every vector property, for the built-in schema and for one of odd but
legal names (labels and properties that are words of Neo4j's Cypher)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from graphfusion.graph import to_heterodata
from graphfusion.schema import Schema, load_schema, parse_schema
from graphfusion.store import Neo4jStore
from graphfusion.store.dialect import NEO4J

try:
    from cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from neo4j_recorder import RecordingDriver, default_responder
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from tests.neo4j_recorder import RecordingDriver, default_responder

ODD = parse_schema({
    "name": "odd",
    "nodes": {
        "Match": {"key": "limit", "properties": {
            "limit": "string", "return": "int", "set": "float", "count": "string",
            "weight": "float", "tags": {"type": "list[string]", "merge": "union"},
            "vec": {"type": "vector", "dim": 2, "similarity": "euclidean"},
        }},
        "Return": {"key": "yield", "properties": {"yield": "string", "skip": "list[int]"}},
    },
    "relationships": {
        "Call": {"between": [["Match", "Match"], ["Match", "Return"]],
                 "properties": {"weight": "float", "delete": "string",
                                "merge": {"type": "list[string]", "merge": "union"}}},
        "Self_": {"between": [["Return", "Return"]]},
    },
})  # fmt: skip

SAMPLE = {
    "string": "s",
    "int": 1,
    "float": 1.0,
    "bool": True,
    "datetime": dt.datetime(2024, 1, 1),
    "list[string]": ["a"],
    "list[int]": [1],
    "list[float]": [1.0],
}


def _responder(query: str, params: dict[str, object]) -> object:
    """One row for the export's reads (a node with every column, an edge between them)."""
    if query.startswith("MATCH (n:") and "ORDER BY id" in query:
        columns = [c.split(" AS ")[1] for c in query.split("RETURN ")[1].split(" ORDER")[0]
                   .split(", ")]  # fmt: skip
        return [{c: ("k" if c == "id" else None) for c in columns}]
    if query.startswith("MATCH (a:"):
        return [{"s": "k", "d": "k", "w": 1.0}]
    return default_responder(query, params)


def _statements(schema: Schema) -> list[str]:
    driver = RecordingDriver(_responder)  # type: ignore[arg-type]
    store = Neo4jStore(driver=driver, schema=schema)
    for label, node in schema.nodes.items():
        row: dict[str, object] = {node.key: "k"}
        for prop in node.properties:
            if prop.name == node.key:
                continue
            dim = prop.type.dim or 0
            row[prop.name] = [0.5] * dim if prop.type.is_vector else SAMPLE[prop.type.name]
        store.upsert_nodes(label, pd.DataFrame([row]))
        store.write_node_rows(label, [row])
    for rtype, start, end in schema.rel_pairs():
        rel = schema.rel(rtype)
        row = {"src": "k", "dst": "k", **{p.name: SAMPLE[p.type.name] for p in rel.properties}}
        store.write_rel_rows(rtype, [row], start=start, end=end)
    to_heterodata(store)
    for label, prop in schema.vector_properties():
        dim = prop.type.dim or 0
        store.query(
            NEO4J.nearest(label, prop.name, dim) + " RETURN node.id AS id, score LIMIT $k",
            {"vector": [0.5] * dim, "k": 3},
        )
        store.query(
            f"MATCH (n:{label}) WHERE n.{prop.name} IS NOT NULL RETURN "
            + NEO4J.cosine_similarity(f"n.{prop.name}", "$vector", dim)
            + " AS score",
            {"vector": [0.5] * dim},
        )
    return list(dict.fromkeys(driver.queries))


@pytest.mark.skipif(not cypher_lint_available(), reason=unavailable_reason() or "")
@pytest.mark.parametrize("schema", [load_schema(), ODD], ids=["ecommerce", "odd names"])
def test_every_feature_passes_neo4j_parser(schema: Schema) -> None:
    statements = _statements(schema)
    kinds = {
        "vector index": "CREATE VECTOR INDEX",
        "vector write": "_vec = coalesce(r.",
        "union list": "CASE WHEN r.",
        "export nodes": "ORDER BY id",
        "export edges": "AS s, b.",
        "vector search": "db.index.vector.queryNodes",
        "cosine": "vector.similarity.cosine",
    }
    if schema is ODD:
        kinds["vector write"] = "n.vec = coalesce(r.vec, n.vec)"
    missing = [k for k, text in kinds.items() if not any(text in q for q in statements)]
    assert not missing, missing
    failed = [r.describe() for r in lint_cypher(statements) if not r.ok]
    assert not failed, "\n".join(failed)
