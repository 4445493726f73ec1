"""The Neo4j store: exact Cypher through a recording driver, Neo4j's own parser, a live test."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest

from graphfusion.errors import QueryError, StoreError, ValidationError
from graphfusion.schema import load_schema
from graphfusion.search import similar
from graphfusion.store import Neo4jStore, open_store
from graphfusion.store.dialect import NEO4J, SHOW_INDEXES

try:
    from cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from neo4j_recorder import RecordingDriver, Response, default_responder
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from tests.neo4j_recorder import RecordingDriver, Response, default_responder


def _store(database: str = "shop") -> tuple[Neo4jStore, RecordingDriver]:
    driver = RecordingDriver()
    return Neo4jStore(driver=driver, database=database), driver


def test_connect_creates_constraints_and_vector_indexes_first() -> None:
    _, driver = _store()
    schema = load_schema()
    # then one read of the index catalogue checks the vector indexes (test_neo4j_round2.py)
    assert driver.queries == [*NEO4J.schema_ddl(schema), SHOW_INDEXES]
    assert all(c.database == "shop" for c in driver.calls)
    assert driver.queries[0] == (
        "CREATE CONSTRAINT user_id_unique IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE"
    )


def test_upsert_nodes_sends_unwind_merge_batches() -> None:
    store, driver = _store()
    driver.calls.clear()
    frame = pd.DataFrame(
        {"id": ["p1", "p2", "p3"], "title": ["Mug", None, "Hat"], "price": [1.5, 2, None]}
    )
    store.upsert_nodes("Product", frame, batch_size=2)
    assert [c.query for c in driver.calls] == [
        "UNWIND $rows AS r MERGE (n:Product {id: r.id}) SET n.title = coalesce(r.title, "
        "n.title), n.price = coalesce(r.price, n.price)",
        # the second batch has no price: it is not sent at all
        "UNWIND $rows AS r MERGE (n:Product {id: r.id}) SET n.title = coalesce(r.title, n.title)",
    ]
    assert driver.calls[0].parameters == {
        "rows": [
            {"id": "p1", "title": "Mug", "price": 1.5},
            {"id": "p2", "title": None, "price": 2.0},
        ]
    }
    assert driver.calls[1].parameters == {"rows": [{"id": "p3", "title": "Hat"}]}
    assert {c.database for c in driver.calls} == {"shop"}


def test_upsert_relationships_checks_ends_then_merges() -> None:
    store, driver = _store()
    driver.calls.clear()
    frame = pd.DataFrame(
        {"src": ["u1"], "dst": ["p1"], "ts": ["2024-05-01T12:00:00"], "weight": [2]}
    )
    store.upsert_relationships("PURCHASED", frame, start="User", end="Product")
    assert driver.queries == [
        "UNWIND $keys AS k MATCH (n:User {id: k}) RETURN n.id AS key",
        "UNWIND $keys AS k MATCH (n:Product {id: k}) RETURN n.id AS key",
        "UNWIND $rows AS r MATCH (a:User {id: r.src}) MATCH (b:Product {id: r.dst}) "
        "MERGE (a)-[e:PURCHASED]->(b) SET e.ts = coalesce(r.ts, e.ts), "
        "e.weight = coalesce(r.weight, e.weight)",
    ]
    assert driver.calls[2].parameters == {
        "rows": [{"src": "u1", "dst": "p1", "ts": dt.datetime(2024, 5, 1, 12), "weight": 2.0}]
    }


def test_union_lists_gain_only_new_elements() -> None:
    store, driver = _store()
    driver.calls.clear()
    store.upsert_nodes("Supplier", pd.DataFrame({"id": ["s1"], "roles": [["a", "b", "a"]]}))
    assert driver.queries == [
        "UNWIND $rows AS r MERGE (n:Supplier {id: r.id}) SET n.roles = CASE WHEN r.roles IS "
        "NULL THEN n.roles WHEN n.roles IS NULL THEN r.roles ELSE n.roles + [x IN r.roles "
        "WHERE NOT x IN n.roles] END"
    ]
    assert driver.calls[0].parameters == {"rows": [{"id": "s1", "roles": ["a", "b"]}]}


def test_dangling_ends_are_refused_before_writing() -> None:
    driver = RecordingDriver(lambda q, p: [{"count": 0}] if "count(" in q else [])
    store = Neo4jStore(driver=driver)
    driver.calls.clear()
    with pytest.raises(ValidationError, match="User ends do not exist"):
        store.upsert_relationships(
            "VIEWED", pd.DataFrame({"src": ["u1"], "dst": ["p1"]}), start="User", end="Product"
        )
    assert not any("MERGE" in q for q in driver.queries)


def test_counts_reset_query_and_close() -> None:
    store, driver = _store()
    driver.calls.clear()
    counts = store.counts()
    schema = load_schema()
    assert set(counts.nodes) == set(schema.nodes)
    assert "MATCH (n:Product) RETURN count(n) AS count" in driver.queries
    assert "MATCH ()-[r:VIEWED]->() RETURN count(r) AS count" in driver.queries
    driver.calls.clear()
    store.reset()
    assert driver.queries == [f"MATCH (n:{label}) DETACH DELETE n" for label in schema.nodes]
    store.query("MATCH (p:Product {id: $id}) RETURN p", {"id": "p1"})
    assert driver.calls[-1].parameters == {"id": "p1"}
    store.close()
    assert driver.closed
    with pytest.raises(StoreError, match="closed"):
        store.query("RETURN 1")


def test_read_only_store_sends_read_transactions_and_creates_no_schema() -> None:
    from neo4j import RoutingControl

    driver = RecordingDriver()
    store = Neo4jStore(driver=driver, read_only=True)
    assert driver.calls == []  # no constraint or index DDL
    store.query("MATCH (p:Product) RETURN p.id AS id")
    store.counts()
    assert {c.kwargs["routing_"] for c in driver.calls} == {RoutingControl.READ}


def test_query_read_sends_one_read_transaction() -> None:
    from neo4j import RoutingControl

    store, driver = _store()
    assert {c.kwargs["routing_"] for c in driver.calls} == {RoutingControl.WRITE}
    store.query_read("MATCH (p:Product {id: $id}) RETURN p.title AS t", {"id": "p1"})
    assert driver.calls[-1].kwargs["routing_"] == RoutingControl.READ
    assert driver.calls[-1].parameters == {"id": "p1"}
    store.query("MATCH (p:Product) RETURN count(p) AS count")
    assert driver.calls[-1].kwargs["routing_"] == RoutingControl.WRITE


def test_query_read_stops_reading_at_max_rows_and_sends_the_timeout() -> None:
    def responder(query: str, params: dict[str, object]) -> Response:
        if query.startswith("UNWIND"):
            return ["n"], [{"n": n} for n in range(100)]
        return ["id"], []

    driver = RecordingDriver(responder)
    store = Neo4jStore(driver=driver, read_only=True)
    read = store.query_read("UNWIND range(1, 100) AS n RETURN n", max_rows=3, timeout_s=2.5)
    assert (read.columns, read.truncated) == (["n"], True)
    assert read.rows == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert driver.records_read == 4  # three rows and one to know there are more
    assert driver.calls[-1].kwargs["timeout"] == 2.5
    empty = store.query_read("MATCH (p:Product) WHERE p.id = $id RETURN p.id AS id", {"id": "x"})
    assert (empty.columns, empty.rows, empty.truncated) == (["id"], [], False)
    assert "timeout" not in driver.calls[-1].kwargs


def test_driver_errors_become_query_errors() -> None:
    def boom(query: str, params: dict[str, object]) -> list[dict[str, object]]:
        if query.startswith("MATCH (x)"):
            raise RuntimeError("Neo.ClientError.Statement.SyntaxError")
        return []

    store = Neo4jStore(driver=RecordingDriver(boom))
    with pytest.raises(QueryError, match="SyntaxError"):
        store.query("MATCH (x) RETURN y")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphfusion.store.neo4j import neo4j_settings

    monkeypatch.delenv("NEO4J_URI", raising=False)
    with pytest.raises(StoreError, match="no Neo4j URI"):
        neo4j_settings()
    monkeypatch.setenv("NEO4J_URI", "neo4j://db.example:7687")
    monkeypatch.setenv("NEO4J_USERNAME", "alice")
    monkeypatch.setenv("NEO4J_DATABASE", "shop")
    assert neo4j_settings() == {
        "uri": "neo4j://db.example:7687", "user": "alice", "password": "", "database": "shop"
    }  # fmt: skip
    assert neo4j_settings("bolt://other:7687")["uri"] == "bolt://other:7687"


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot connect to Neo4j at bolt://127\.0\.0\.1:9"):
        open_store(neo4j="bolt://127.0.0.1:9")


SAMPLE = {
    "string": "s",
    "int": 1,
    "float": 1.0,
    "bool": True,
    "datetime": "2024-01-01",
    "list[string]": ["a"],
}


def _every_statement() -> list[str]:
    """Drive the store through everything it can send, and collect the statements."""
    store, driver = _store()
    schema = load_schema()
    for label, node in schema.nodes.items():
        props = [p.name for p in node.properties if p.name != node.key and not p.type.is_vector]
        frame = pd.DataFrame({"id": ["k"], **{p: [None] for p in props}})
        for p in props:
            frame[p] = [SAMPLE[node.prop(p).type.name]]
        store.upsert_nodes(label, frame)
    for rtype, start, end in schema.rel_pairs():
        rel = schema.rel(rtype)
        frame = pd.DataFrame({"src": ["a"], "dst": ["b"]})
        for prop in rel.properties:
            frame[prop.name] = [SAMPLE[prop.type.name]]
        store.upsert_relationships(rtype, frame, start=start, end=end)
    store.counts()
    store.reset()
    return list(dict.fromkeys(driver.queries))


@pytest.mark.skipif(not cypher_lint_available(), reason=unavailable_reason() or "")
def test_every_statement_passes_neo4j_parser() -> None:
    statements = _every_statement()
    assert len(statements) > 40
    results = lint_cypher(statements)
    failed = [r.describe() for r in results if not r.ok]
    assert not failed, "\n".join(failed)


@pytest.mark.skipif(not cypher_lint_available(), reason=unavailable_reason() or "")
def test_readme_neo4j_cypher_passes_neo4j_parser() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```cypher\n(.*?)```", readme, flags=re.S)
              if "db.index.vector" in b]  # fmt: skip
    assert blocks
    failed = [r.describe() for r in lint_cypher(blocks) if not r.ok]
    assert not failed, "\n".join(failed)


@pytest.mark.neo4j_live
@pytest.mark.skipif(not os.environ.get("NEO4J_URI"), reason="NEO4J_URI is not set")
def test_live_neo4j() -> None:  # pragma: no cover - needs a server
    store = Neo4jStore()
    key = f"test-{uuid.uuid4()}"
    try:
        store.upsert_nodes("Product", pd.DataFrame({"id": [key], "title": ["Live"]}))
        store.upsert_nodes("User", pd.DataFrame({"id": [key]}))
        store.upsert_relationships(
            "VIEWED", pd.DataFrame({"src": [key], "dst": [key], "weight": [1.0],
                                    "ts": [dt.datetime(2024, 1, 2)]}),
            start="User", end="Product",
        )  # fmt: skip
        # the behaviour features' recency: a naive time is a LocalDateTime, as the stored ts
        recency = store.query(
            "MATCH (:User {id: $k})-[e:VIEWED]->() RETURN "
            "count(CASE WHEN e.ts <= $latest THEN 1 END) AS n",
            {"k": key, "latest": dt.datetime(2030, 1, 1)},
        )
        assert recency == [{"n": 1}]
        # Neo4j's vector.similarity.cosine is (1 + cosine) / 2; the dialect maps it back
        opposite = NEO4J.cosine_similarity("$a", "$b", 2)
        (row,) = store.query(f"RETURN {opposite} AS c", {"a": [1.0, 0.0], "b": [-1.0, 0.0]})
        assert row["c"] == pytest.approx(-1.0, abs=1e-6)
        rows = store.query(
            "MATCH (u:User {id: $k})-[e:VIEWED]->(p:Product {id: $k}) RETURN p.title AS t",
            {"k": key},
        )
        assert rows == [{"t": "Live"}]
        # a read transaction: the server refuses the write
        with pytest.raises(QueryError):
            store.query_read("MATCH (p:Product {id: $k}) SET p.title = 'Evil'", {"k": key})
        read = store.query_read(
            "MATCH (p:Product {id: $k}) RETURN p.title AS t", {"k": key}, max_rows=5, timeout_s=10
        )
        assert (read.columns, read.rows, read.truncated) == (["t"], [{"t": "Live"}], False)
    finally:
        store.query("MATCH (n {id: $k}) DETACH DELETE n", {"k": key})
        store.close()


def test_similar_uses_the_vector_index() -> None:
    """The index gives the candidates; they are scored by cosine similarity, as on the
    embedded store (the index's own score, mapped back as ``2 * score - 1``, was cosine only
    for a cosine index: a schema's ``euclidean`` vectors got ``2 / (1 + d^2) - 1``)."""
    vector = [0.0] * 383 + [1.0]

    def responder(query: str, params: dict[str, object]) -> list[dict[str, object]]:
        if "AS key" in query:
            return [{"key": k} for k in params["keys"]]  # type: ignore[union-attr]
        if query.startswith("MATCH (n:Product {id: $id})"):
            return [{"v": vector}]
        if "queryNodes" in query:
            return [{"id": "p2", "title": "B", "score": 0.5}]
        return []

    driver = RecordingDriver(responder)
    store = Neo4jStore(driver=driver)
    driver.calls.clear()
    got = similar(store, "p1", "text", k=5)
    assert got.to_dict(orient="records") == [{"id": "p2", "title": "B", "score": 0.5}]
    search = driver.calls[-1]
    assert search.query == (
        "CALL db.index.vector.queryNodes('product_text_vec', $k, $vector) YIELD node "
        "WITH node, (2 * vector.similarity.cosine(node.text_vec, $vector) - 1) AS score "
        "WITH node AS p, score WHERE p.id <> $exclude "
        "RETURN p.id AS id, p.title AS title, score ORDER BY score DESC, id LIMIT $n"
    )
    assert search.parameters["n"] == 5
    assert search.parameters["exclude"] == "p1"
    assert search.parameters["vector"] == vector
    if cypher_lint_available():
        failed = [r.describe() for r in lint_cypher(driver.queries) if not r.ok]
        assert not failed, "\n".join(failed)


def test_an_empty_arrow_result_keeps_its_columns() -> None:
    """Callers read the columns of an empty result (no links of a type, no vectors yet), as
    the embedded store gives them."""
    from graphfusion.train import link_matrices, links_query

    def responder(query: str, params: dict[str, object]) -> Response:
        if "[r:VIEWED]" in query:
            return ["u", "p", "w"], []
        if "[r:PURCHASED]" in query:
            return [{"u": "u1", "p": "p2", "w": 1.0}, {"u": "u1", "p": "p2", "w": 1.0}]
        return default_responder(query, params)

    store = Neo4jStore(driver=RecordingDriver(responder))
    table = store.query_arrow(links_query(store, "VIEWED"))
    assert table.num_rows == 0 and table.column_names == ["u", "p", "w"]
    counts, weights = link_matrices(store, "VIEWED", ["u1", "u2"], ["p1", "p2"])
    assert counts.shape == weights.shape == (2, 2) and counts.nnz == weights.nnz == 0
    counts, weights = link_matrices(store, "PURCHASED", ["u1", "u2"], ["p1", "p2"])
    assert counts.toarray().tolist() == [[0, 2], [0, 0]]
    assert weights.toarray().tolist() == [[0, 2], [0, 0]]


def test_bad_keys_values_and_schema_are_refused_before_anything_is_sent() -> None:
    """The same checks as the embedded store's (test_bad_node_frames): nothing reaches the
    server."""
    store, driver = _store()
    driver.calls.clear()
    for frame, match in (
        (pd.DataFrame({"id": [True]}), "row 0: a key must be text or a number"),
        (pd.DataFrame({"id": [float("inf")]}), "not a finite number"),
        (pd.DataFrame({"id": ["x" * 513]}), "longer than 512"),
        (pd.DataFrame({"id": ["a"], "price": [-5.0]}), "price -5.0 is below its minimum 0"),
    ):
        with pytest.raises(ValidationError, match=match):
            store.upsert_nodes("Product", frame)
    assert driver.calls == []
    with pytest.raises(ValidationError, match="schema must be a Schema"):
        Neo4jStore(driver=RecordingDriver(), schema="ecommerce")  # type: ignore[arg-type]


def test_an_empty_result_keeps_its_columns_in_a_frame() -> None:
    """query_df of no rows has the query's columns (it had none: df["id"] was a KeyError)."""
    driver = RecordingDriver(lambda q, p: (["id", "title"], []) if "RETURN" in q else [])
    store = Neo4jStore(driver=driver)
    frame = store.query_df("MATCH (p:Product) WHERE p.id = $id RETURN p.id AS id, p.title AS title",
                           {"id": "none"})  # fmt: skip
    assert list(frame.columns) == ["id", "title"] and frame.empty
